use workflow::prelude::*;

#[actor]
async fn greet(name: &str) {
    let _ = name;
}

fn main() {
    let _ = greet::message("world");
}
