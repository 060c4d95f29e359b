use workflow::prelude::*;

#[actor]
extern "C" fn callback(code: i32) {
    let _ = code;
}

fn main() {}
