use workflow::prelude::*;

#[actor(queue = "images", max_retries = 3, queue = "thumbnails")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
