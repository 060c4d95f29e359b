use workflow::prelude::*;

#[actor(queue = "image queue")]
async fn resize(image_id: u64) {
    let _ = image_id;
}

fn main() {
    let _ = resize::message(1);
}
