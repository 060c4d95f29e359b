//! A fan-out over run-time data, a delay, and a failure handler.
//!
//! ```sh
//! cargo run --example fan_out
//! ```
//!
//! Two workflows resize every image of a bucket in parallel, wait a moment, then notify. The
//! second bucket holds a corrupt image: its resize fails for good, the workflow fails, the
//! failure handler runs exactly once and the notification never goes out.

use std::time::{Duration, Instant};

use workflow::prelude::*;
use workflow::{Error, Workflow};

#[actor(queue = "images")]
async fn scan_bucket(bucket: String) {
    println!("[{bucket}] scanning");
}

#[actor(queue = "images", max_retries = 1, min_backoff = "50ms")]
async fn resize(bucket: String, image_id: u64, width: u32) -> Result<(), String> {
    if image_id == 13 {
        return Err(format!("image {image_id} is corrupt"));
    }
    tokio::time::sleep(Duration::from_millis(10 + image_id % 7 * 5)).await;
    println!("[{bucket}] resized image {image_id} to {width}px");
    Ok(())
}

#[actor(queue = "images")]
async fn notify(bucket: String, images: usize) {
    println!("[{bucket}] notified: {images} images ready");
}

#[actor(queue = "images")]
async fn alert(bucket: String) {
    println!("[{bucket}] ALERT: the workflow failed; nothing was notified");
}

fn resize_bucket(bucket: &str, ids: Vec<u64>) -> Workflow {
    let n = ids.len();
    workflow!(chain![
        scan_bucket(bucket.to_owned()),
        group![for id in ids => resize(bucket.to_owned(), id, 640)],
        delay!(Duration::from_millis(300), notify(bucket.to_owned(), n)),
    ])
    .on_failure(alert::message(bucket.to_owned()))
}

#[tokio::main]
async fn main() -> workflow::Result<()> {
    let broker = MemoryBroker::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(broker.clone())
            .concurrency(16)
            .run_until(async {
                stopped.await.ok();
            }),
    );

    let started = Instant::now();
    let good = resize_bucket("holidays", (1..=12).collect())
        .run(&broker)
        .await?;
    let bad = resize_bucket("scans", vec![11, 12, 13, 14])
        .run(&broker)
        .await?;

    let status = good.wait_timeout(Duration::from_secs(30)).await?;
    println!("holidays: {} after {:?}", status.state, started.elapsed());
    match bad.wait_timeout(Duration::from_secs(30)).await {
        Err(Error::WorkflowFailed {
            node, actor, error, ..
        }) => {
            println!("scans: failed at node {node} ({actor}): {error}");
        }
        other => panic!("the scans workflow should have failed: {other:?}"),
    }
    let status = bad.status().await?;
    for state in [NodeState::Done, NodeState::Failed, NodeState::Skipped] {
        println!("scans: {} node(s) {state}", status.count(state));
    }

    broker.join(Duration::from_secs(30)).await?;
    stop.send(()).ok();
    worker.await.expect("the worker task panicked")
}
