use std::time::Duration;
use workflow::prelude::*;

#[actor]
async fn resize(image_id: u64, width: u32) {
    let _ = (image_id, width);
}

fn main() {
    let ids: Vec<u64> = vec![1, 2, 3];
    let _ = workflow!(chain![
        chain![],
        parallel![resize(1, 640)],
        group![for id in ids resize(id, 640)],
        delay!(Duration::from_secs(1)),
        resize(1, 640) resize(2, 640),
        resize("1", 640),
    ]);
}
