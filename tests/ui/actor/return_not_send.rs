use workflow::prelude::*;

#[actor]
async fn parse(text: String) -> Result<u32, Box<dyn std::error::Error>> {
    Ok(text.parse()?)
}

fn main() {}
