use workflow::prelude::*;

struct Report;

#[actor]
async fn summarize(id: u64) -> Report {
    let _ = id;
    Report
}

fn main() {}
