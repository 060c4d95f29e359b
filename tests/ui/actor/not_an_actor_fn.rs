fn plain_fn(x: u32) {
    let _ = x;
}

fn main() {
    let _ = plain_fn::message(1);
}
