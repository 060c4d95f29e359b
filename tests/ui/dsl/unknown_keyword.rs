use workflow::prelude::*;

#[actor]
async fn notify() {}

fn main() {
    let _ = workflow!(chain![notify(), parallel![notify(), notify()]]);
}
