use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

#[actor]
async fn notify() {}

fn main() {
    let _ = workflow!(chain![resize(42, "640"), notify()]);
}
