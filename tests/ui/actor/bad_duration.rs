use workflow::prelude::*;

#[actor(time_limit = "30 seconds")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
