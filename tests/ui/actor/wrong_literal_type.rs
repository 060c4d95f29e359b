use workflow::prelude::*;

#[actor(max_retries = "5")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
