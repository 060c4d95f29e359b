use workflow::prelude::*;

struct Service;

impl Service {
    #[actor]
    async fn handle(&self, id: u64) {
        let _ = id;
    }
}

fn main() {}
