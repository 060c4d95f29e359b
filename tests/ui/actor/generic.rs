use workflow::prelude::*;

#[actor]
async fn store<T: serde::Serialize>(value: T) {
    let _ = value;
}

fn main() {
    // No cascade: the actor's name still exists.
    let _ = store::message(1);
}
