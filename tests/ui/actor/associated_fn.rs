// Known limitation: an attribute macro cannot see that its function is inside an `impl`, so the
// error is rustc's ("struct is not supported in `trait`s or `impl`s") at `#[actor]`, followed by
// a few knock-on errors. The macro catches the common form, a method with `self`
// (self_receiver.rs).
use workflow::prelude::*;

struct Service;

impl Service {
    #[actor]
    async fn handle(id: u64) {
        let _ = id;
    }
}

fn main() {}
