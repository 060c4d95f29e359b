use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

fn main() {
    let _ = resize::message(42, "640");
}
