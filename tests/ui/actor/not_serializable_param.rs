use workflow::prelude::*;

struct Image {
    pixels: Vec<u8>,
}

#[actor]
async fn resize(image: Image, width: u32) {
    let _ = (image.pixels, width);
}

fn main() {}
