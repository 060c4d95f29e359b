//! Settlements the broker keeps rejecting do not hold back the others; messages the broker
//! hands back with a settlement run within the room offered, and go back if the worker stops.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use support::{eventually, start, worker};
use workflow::broker::BoxFuture;
use workflow::broker::Plan;
use workflow::prelude::*;
use workflow::{
    Delivery, Error, Message, QueueStats, Result, Room, Settled, Settlement, Workflow,
    WorkflowState, WorkflowStatus,
};

/// The methods the test brokers below pass on to their `inner` memory broker as they are.
macro_rules! forward_the_rest {
    () => {
        fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>> {
            self.inner.enqueue(message, delay)
        }
        fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>> {
            self.inner.queue_stats(queue)
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
    };
}

/// A memory broker that refuses, for good, to settle the message with argument 0.
#[derive(Clone, Default)]
struct Picky {
    inner: MemoryBroker,
    poison: std::sync::Arc<Mutex<Option<String>>>,
}

impl Broker for Picky {
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
    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        self.inner.wait_for_work(queues, timeout)
    }
    forward_the_rest!();
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

/// A memory broker that, like the Redis one, hands back messages of the queues a settlement
/// pushed onto, within the room offered. While `gated`, each settlement waits for a permit.
#[derive(Clone)]
struct Handing {
    inner: MemoryBroker,
    gated: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Wakes no consumer when work arrives (as for messages of another process), and takes a
    /// moment to settle (as a round trip to Redis).
    deaf: std::sync::Arc<std::sync::atomic::AtomicBool>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::Arc<AtomicUsize>,
    handed: std::sync::Arc<AtomicUsize>,
    max_room: std::sync::Arc<AtomicUsize>,
    /// The most messages of one queue in flight (fetched or taken, not settled) seen.
    max_in_flight: std::sync::Arc<AtomicUsize>,
}

impl Handing {
    async fn note_in_flight(&self, queue: &str) -> Result<()> {
        let held = self.inner.queue_stats(queue).await?.in_flight;
        self.max_in_flight.fetch_max(held, SeqCst);
        Ok(())
    }
}

impl Default for Handing {
    fn default() -> Self {
        Handing {
            inner: MemoryBroker::new(),
            gated: Default::default(),
            deaf: Default::default(),
            gate: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
            waiting: Default::default(),
            handed: Default::default(),
            max_room: Default::default(),
            max_in_flight: Default::default(),
        }
    }
}

impl Broker for Handing {
    fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(async move {
            let got = self.inner.fetch(queue, max).await?;
            self.note_in_flight(queue).await?;
            Ok(got)
        })
    }
    fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>> {
        self.inner.settle(batch)
    }
    fn settle_and_take<'a>(
        &'a self,
        batch: &'a [Settlement],
        room: &'a [Room],
    ) -> BoxFuture<'a, Result<Settled>> {
        Box::pin(async move {
            if self.gated.load(SeqCst) {
                self.waiting.fetch_add(1, SeqCst);
                self.gate.acquire().await.unwrap().forget();
            }
            if self.deaf.load(SeqCst) {
                // A round trip, during which the room offered stays reserved.
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let ready = self.inner.settle(batch).await?;
            let mut taken = Vec::new();
            for r in room {
                self.max_room.fetch_max(r.max, SeqCst);
                if ready.iter().any(|q| **q == *r.queue) {
                    let got = self.inner.fetch(&r.queue, r.max).await?;
                    self.handed.fetch_add(got.len(), SeqCst);
                    self.note_in_flight(&r.queue).await?;
                    taken.extend(got);
                }
            }
            Ok(Settled { ready, taken })
        })
    }
    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        if self.deaf.load(SeqCst) {
            return Box::pin(tokio::time::sleep(timeout));
        }
        self.inner.wait_for_work(queues, timeout)
    }
    forward_the_rest!();
}

static LINKS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static GATED_LINKS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[actor(queue = "hand")]
async fn link(n: u32) {
    LINKS.lock().unwrap().push(n);
}

#[actor(queue = "hand_gated")]
async fn gated_link(n: u32) {
    GATED_LINKS.lock().unwrap().push(n);
}

#[tokio::test]
async fn messages_handed_back_with_a_settlement_run_within_the_room() {
    let broker = Handing::default();
    let h = Workflow::chain((0..20).map(link::message))
        .run(&broker)
        .await
        .unwrap();
    let w = start(worker(broker.clone(), &["hand"]).concurrency(1).prefetch(2));
    eventually(Duration::from_secs(10), "the chain to finish", || async {
        h.status().await.unwrap().state == WorkflowState::Succeeded
    })
    .await;
    w.stop().await;
    assert_eq!(*LINKS.lock().unwrap(), (0..20).collect::<Vec<_>>());
    // Each step after the first was handed back with the previous one's settlement.
    assert_eq!(broker.handed.load(SeqCst), 19);
    assert!(
        broker.max_room.load(SeqCst) <= 2,
        "room beyond the prefetch"
    );
    let held = broker.max_in_flight.load(SeqCst);
    assert!(
        (1..=2).contains(&held),
        "{held} in flight with a prefetch of 2"
    );
    assert_eq!(
        broker.queue_stats("hand").await.unwrap(),
        Default::default()
    );
}

#[tokio::test]
async fn messages_handed_back_while_the_worker_stops_go_back_to_the_queue() {
    let broker = Handing::default();
    broker.gated.store(true, SeqCst);
    let h = Workflow::chain((0..3).map(gated_link::message))
        .run(&broker)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(
        worker(broker.clone(), &["hand_gated"]).run_until(async move {
            let _ = stopped.await;
        }),
    );
    // Step 0 ran; its settlement (which would hand back step 1) waits at the gate.
    eventually(Duration::from_secs(10), "step 0's settlement", || async {
        broker.waiting.load(SeqCst) == 1
    })
    .await;
    let _ = stop.send(());
    broker.gate.add_permits(1000);
    run.await.unwrap().unwrap();
    assert_eq!(*GATED_LINKS.lock().unwrap(), [0]);
    assert!(broker.handed.load(SeqCst) >= 1, "step 1 was handed back");
    let s = broker.queue_stats("hand_gated").await.unwrap();
    assert_eq!((s.ready, s.in_flight), (1, 0), "step 1 is queued again");
    assert_eq!(h.status().await.unwrap().state, WorkflowState::Running);
}

static BUSY_STEPS: AtomicUsize = AtomicUsize::new(0);
static QUIET_RUNS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "hand_busy")]
async fn busy_step(n: u32) {
    let _ = n;
    BUSY_STEPS.fetch_add(1, SeqCst);
}

#[actor(queue = "hand_quiet")]
async fn quiet(n: u32) {
    let _ = n;
    QUIET_RUNS.fetch_add(1, SeqCst);
}

#[tokio::test]
async fn a_queue_that_settlements_never_fill_is_still_polled_while_they_flow() {
    // Completions keep coming: 200 chains of 50 steps.
    const STEPS: usize = 200 * 50;
    let broker = Handing::default();
    broker.deaf.store(true, SeqCst);
    for _ in 0..200 {
        Workflow::chain((0..50).map(busy_step::message))
            .run(&broker)
            .await
            .unwrap();
    }
    let w = start(worker(broker.clone(), &["hand_busy", "hand_quiet"]));
    eventually(
        Duration::from_secs(10),
        "the chain to be under way",
        || async { BUSY_STEPS.load(SeqCst) >= 10 },
    )
    .await;
    for n in 0..5 {
        quiet::message(n).send(&broker).await.unwrap();
    }
    // Polled (the broker wakes nobody) while the chain's settlements keep coming.
    eventually(
        Duration::from_secs(10),
        "the quiet queue's messages",
        || async { QUIET_RUNS.load(SeqCst) == 5 },
    )
    .await;
    let steps = BUSY_STEPS.load(SeqCst);
    assert!(steps < STEPS, "the quiet queue waited for the whole chain");
    w.stop().await;
}
