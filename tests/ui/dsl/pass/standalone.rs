//! `chain!`, `group!` and `delay!` work outside `workflow!` and nest anywhere.
use std::time::Duration;
use workflow::prelude::*;

#[actor]
async fn step(n: u32) {
    let _ = n;
}

fn main() {
    let c = chain![step(1), step(2),];
    let g = group!(step(3), chain![step(4), step(5)]);
    let d = delay!(Duration::from_secs(1), group! { step(6), step(7) });
    let f = group![for n in 0..3 => step(n)];
    let all = chain![{ c }, { g }, { d }, { f }];
    assert_eq!(all.plan().unwrap().len(), 10);
    let nested = workflow!(chain![step(8), workflow::group![step(9)]]);
    assert_eq!(nested.plan().unwrap().len(), 2);
}
