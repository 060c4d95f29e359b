use workflow::prelude::*;

#[actor]
async fn store(value: u32)
where
    u32: Copy,
{
    let _ = value;
}

fn main() {}
