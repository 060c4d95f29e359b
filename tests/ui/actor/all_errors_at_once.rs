// Every independent mistake is reported in one compilation.
use workflow::prelude::*;

#[actor(queue = "bad queue", retries = 3, time_limit = "soon")]
async fn resize<T>(image: &str, (w, h): (u32, u32), value: T) {
    let _ = (image, w, h, value);
}

fn main() {}
