use std::time::Duration;
use workflow::prelude::*;

#[actor]
async fn notify() {}

fn main() {
    let _ = workflow!(chain![notify(), delay!(Duration::from_secs(1))]);
}
