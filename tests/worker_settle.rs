//! Settlements the broker keeps rejecting do not hold back the others.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use support::{eventually, start, worker};
use workflow::broker::BoxFuture;
use workflow::engine::Plan;
use workflow::prelude::*;
use workflow::{Delivery, Error, Message, QueueStats, Result, Settlement, WorkflowStatus};

/// A memory broker that refuses, for good, to settle the message with argument 0.
#[derive(Clone, Default)]
struct Picky {
    inner: MemoryBroker,
    poison: std::sync::Arc<Mutex<Option<String>>>,
}

impl Broker for Picky {
    fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>> {
        self.inner.enqueue(message, delay)
    }
    fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(async move {
            let out = self.inner.fetch(queue, max).await?;
            for d in &out {
                if Message::decode(&d.payload)?.args == [serde_json::json!(0)] {
                    *self.poison.lock().unwrap() = Some(d.receipt.clone());
                }
            }
            Ok(out)
        })
    }
    fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>> {
        let poison = self.poison.lock().unwrap().clone();
        if batch.iter().any(|s| Some(s.receipt()) == poison.as_deref()) {
            return Box::pin(async { Err(Error::Broker("rejected".into())) });
        }
        self.inner.settle(batch)
    }
    fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>> {
        self.inner.queue_stats(queue)
    }
    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        self.inner.wait_for_work(queues, timeout)
    }
    fn submit_workflow(&self, plan: Plan) -> BoxFuture<'_, Result<()>> {
        self.inner.submit_workflow(plan)
    }
    fn workflow_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<WorkflowStatus>> {
        self.inner.workflow_status(id)
    }
    fn cancel_workflow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.inner.cancel_workflow(id)
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "picky")]
async fn counted(n: u32) {
    let _ = n;
    RUNS.fetch_add(1, SeqCst);
}

#[tokio::test]
async fn a_rejected_settlement_does_not_block_the_rest_of_its_batch() {
    let broker = Picky::default();
    for n in 0..20 {
        counted::message(n).send(&broker).await.unwrap();
    }
    let w = start(worker(broker.clone(), &["picky"]));
    eventually(Duration::from_secs(10), "19 messages settled", || async {
        let s = broker.queue_stats("picky").await.unwrap();
        RUNS.load(SeqCst) == 20 && s.ready == 0 && s.in_flight == 1
    })
    .await;
    w.stop().await;
    // The rejected one stays in flight, to be delivered again by the broker's recovery.
    assert_eq!(broker.queue_stats("picky").await.unwrap().in_flight, 1);
}
