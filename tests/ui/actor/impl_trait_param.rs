use workflow::prelude::*;

#[actor]
async fn store(value: impl serde::Serialize) {
    let _ = value;
}

fn main() {}
