//! The seed's workflow: `task1`, then `task2`, `task3` and `task4` in parallel, `task5` after
//! `task2`, `task6` and `task7` after `task4`, and `task8` once all of them are done.
//!
//! ```sh
//! cargo run --example diamond                                   # embedded broker
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example diamond   # Redis
//! ```
//!
//! Each task prints when it starts and when it finishes; the final status follows.

use std::time::Duration;

use workflow::prelude::*;
use workflow::{Broker, RedisBroker, WorkflowStatus};

/// Pretends to work for a little while, so the parallel branches overlap.
async fn work(name: String, millis: u64) {
    println!("start  {name}");
    tokio::time::sleep(Duration::from_millis(millis)).await;
    println!("finish {name}");
}

#[actor(queue = "diamond")]
async fn task1(a: String, b: String, c: String) {
    work(format!("task1({a}, {b}, {c})"), 50).await;
}

#[actor(queue = "diamond")]
async fn task2() {
    work("task2".into(), 30).await;
}

#[actor(queue = "diamond")]
async fn task3() {
    work("task3".into(), 120).await;
}

#[actor(queue = "diamond")]
async fn task4() {
    work("task4".into(), 20).await;
}

#[actor(queue = "diamond")]
async fn task5() {
    work("task5".into(), 30).await;
}

#[actor(queue = "diamond")]
async fn task6() {
    work("task6".into(), 40).await;
}

#[actor(queue = "diamond")]
async fn task7() {
    work("task7".into(), 10).await;
}

#[actor(queue = "diamond")]
async fn task8() {
    work("task8".into(), 10).await;
}

/// Submits the seed's workflow, runs a worker until it finished, and returns its status.
async fn run<B: Broker + Clone>(broker: B) -> workflow::Result<WorkflowStatus> {
    let wf = workflow!(chain![
        task1("arguments".into(), "go".into(), "here".into()),
        group![
            chain![task2(), task5()],
            task3(),
            chain![task4(), group![task6(), task7()]],
        ],
        task8(),
    ]);
    let handle = wf.run(&broker).await?;
    println!("submitted workflow {}", handle.id());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(broker)
        .queues(["diamond"])
        .concurrency(8)
        .run_until(async {
            stopped.await.ok();
        });
    let worker = tokio::spawn(worker);
    let status = handle.wait_timeout(Duration::from_secs(60)).await;
    stop.send(()).ok();
    worker.await.expect("the worker task panicked")?;
    status
}

#[tokio::main]
async fn main() -> workflow::Result<()> {
    let status = match std::env::var("REDIS_URL") {
        Ok(url) => {
            println!("broker: Redis at {url}");
            run(RedisBroker::connect(&url).await?).await?
        }
        Err(_) => {
            println!("broker: embedded (set REDIS_URL to use Redis)");
            run(MemoryBroker::new()).await?
        }
    };
    println!("workflow {}: {}", status.id, status.state);
    for (node, n) in status.nodes.iter().enumerate() {
        println!("  node {node}: {:<6} {}", n.actor, n.state);
    }
    Ok(())
}
