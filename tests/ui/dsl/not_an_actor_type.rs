use workflow::prelude::*;

#[actor]
async fn notify() {}

struct Thumbnail {}

fn main() {
    let _ = workflow!(chain![Thumbnail(), notify()]);
}
