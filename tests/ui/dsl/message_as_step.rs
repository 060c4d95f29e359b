use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

fn main() {
    let _ = workflow!(group![resize::message(1, 640), resize(2, 640)]);
}
