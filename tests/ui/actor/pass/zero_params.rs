// An actor without parameters.
use workflow::prelude::*;

#[actor]
async fn tick() {}

#[actor]
fn tock() -> Result<(), String> {
    Ok(())
}

fn main() {
    assert!(tick::message().into_message().unwrap().args.is_empty());
    assert!(tock::message().into_message().unwrap().args.is_empty());
}
