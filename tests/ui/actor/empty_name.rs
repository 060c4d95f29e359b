use workflow::prelude::*;

#[actor(name = "")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
