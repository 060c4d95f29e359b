use workflow::prelude::*;

#[actor(min_backoff = 1000)]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
