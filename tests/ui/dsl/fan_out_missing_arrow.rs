use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

fn main() {
    let ids = vec![1, 2, 3];
    let _ = workflow!(group![for id in ids resize(id, 640)]);
}
