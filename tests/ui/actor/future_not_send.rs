use std::rc::Rc;
use workflow::prelude::*;

async fn yield_now() {}

#[actor]
async fn count(n: u32) {
    let shared = Rc::new(n);
    yield_now().await;
    let _ = shared;
}

fn main() {}
