use workflow::prelude::*;

#[actor(queue = "images", retries = 5)]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
