use workflow::prelude::*;

#[actor]
unsafe fn poke(address: usize) {
    let _ = address;
}

fn main() {}
