//! A worker on Redis for the example actors (the steps of the seed's workflow); run
//! `submit` next to it to give it work. Stop it with Ctrl-C.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example worker
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example submit -- 100
//! ```

#[path = "shared/redis_actors.rs"]
#[allow(dead_code)]
mod actors;

use workflow::prelude::*;
use workflow::{shutdown_signal, RedisBroker};

#[tokio::main]
async fn main() -> workflow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let broker = RedisBroker::connect(&url).await?;
    println!("worker {} on {url}; Ctrl-C stops it", broker.worker_id());
    // Every actor linked into this binary, on its queue: "example", and "default" for the
    // built-in `workflow_noop` (the stand-in for a delayed empty group).
    Worker::new(broker)
        .concurrency(16)
        .run_until_or_forced(shutdown_signal(), shutdown_signal())
        .await
}
