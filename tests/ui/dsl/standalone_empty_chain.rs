use workflow::prelude::*;

fn main() {
    let _ = chain![];
}
