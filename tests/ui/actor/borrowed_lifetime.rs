use std::borrow::Cow;
use workflow::prelude::*;

#[actor]
async fn greet<'a>(names: Vec<Cow<'a, str>>) {
    let _ = names;
}

fn main() {}
