use workflow::prelude::*;

#[actor("images")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {}
