use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

fn main() {
    let _ = workflow!(group![for id in 42_u64 => resize(id, 640)]);
}
