use workflow::prelude::*;

#[actor]
async fn ping(_: u64) {}

fn main() {}
