use workflow::prelude::*;

#[actor]
async fn notify() {}

async fn thumbnail(width: u32) {
    let _ = width;
}

fn main() {
    let _ = workflow!(chain![thumbnail(640), notify()]);
}
