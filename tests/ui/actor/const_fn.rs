use workflow::prelude::*;

#[actor]
const fn answer(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {}
