use workflow::prelude::*;

#[actor]
struct Resize {
    image_id: u64,
}

fn main() {}
