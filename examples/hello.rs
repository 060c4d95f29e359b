//! Two actors, a few messages, one that fails twice before it succeeds, and a worker on the
//! embedded broker.
//!
//! ```sh
//! cargo run --example hello
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use workflow::prelude::*;

/// Greets someone.
#[actor]
async fn greet(name: String) {
    println!("hello, {name}!");
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Charges a card; the payment service is flaky and fails the first two attempts.
#[actor(queue = "payments", max_retries = 5, min_backoff = "100ms")]
async fn charge(customer: String, cents: u64) -> Result<(), String> {
    let attempt = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt <= 2 {
        println!("charge {customer} {cents}: attempt {attempt} failed, retrying");
        return Err(format!("payment service unavailable (attempt {attempt})"));
    }
    println!("charge {customer} {cents}: attempt {attempt} succeeded");
    Ok(())
}

#[tokio::main]
async fn main() -> workflow::Result<()> {
    let broker = MemoryBroker::new();
    for name in ["Ada", "Grace", "Linus"] {
        greet::message(name.into()).send(&broker).await?;
    }
    charge::message("Ada".into(), 4200).send(&broker).await?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(broker.clone()).concurrency(4).run_until(async {
        stopped.await.ok();
    }));

    broker.join(Duration::from_secs(30)).await?;
    stop.send(()).ok();
    worker.await.expect("the worker task panicked")?;

    let dead = broker.dead_letters("payments").len();
    println!(
        "all done: {} charge attempts, {dead} dead letters",
        ATTEMPTS.load(Ordering::SeqCst)
    );
    Ok(())
}
