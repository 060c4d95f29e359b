//! Submits N copies of the seed's workflow to Redis and waits until all succeeded; a
//! `worker` must run against the same Redis.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example worker &
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example submit -- 100
//! ```

#[path = "shared/redis_actors.rs"]
#[allow(dead_code)]
mod actors;

use std::time::{Duration, Instant};

use workflow::RedisBroker;

#[tokio::main]
async fn main() -> workflow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|_| {
            workflow::Error::Config(format!("`{arg}` is not a number of workflows"))
        })?,
        None => 10,
    };
    let broker = RedisBroker::connect(&url).await?;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for run in 0..n {
        handles.push(actors::seed(run).run(&broker).await?);
    }
    println!(
        "submitted {n} workflows in {:?}; waiting",
        started.elapsed()
    );
    for h in &handles {
        h.wait_timeout(Duration::from_secs(600)).await?;
    }
    let took = started.elapsed();
    println!(
        "{n} workflows ({} tasks) succeeded in {took:?}: {:.0} tasks/s",
        8 * n,
        (8 * n) as f64 / took.as_secs_f64()
    );
    Ok(())
}
