//! The worker on the in-memory broker: success, retries, dead letters, limits, shutdown.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use support::{eventually, start, worker};
use tokio::sync::Semaphore;
use workflow::prelude::*;
use workflow::Message;

fn now_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.unwrap().as_millis() as u64
}

const T: Duration = Duration::from_secs(10);

static ADDED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

#[actor(queue = "basics")]
async fn add(a: i64, b: i64) {
    ADDED.lock().unwrap().push(a + b);
}

#[tokio::test]
async fn messages_run_their_actor() {
    let broker = MemoryBroker::new();
    for i in 0..5 {
        add::message(i, 100).send(&broker).await.unwrap();
    }
    let w = start(worker(broker.clone(), &["basics"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let mut added = ADDED.lock().unwrap().clone();
    added.sort();
    assert_eq!(added, [100, 101, 102, 103, 104]);
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "flaky", min_backoff = "10ms", max_backoff = "40ms")]
fn flaky(fail_times: usize) -> Result<&'static str, String> {
    match FLAKY_CALLS.fetch_add(1, SeqCst) {
        n if n < fail_times => Err(format!("attempt {} failed", n + 1)),
        _ => Ok("done"),
    }
}

#[tokio::test]
async fn a_failing_message_is_retried_until_it_succeeds() {
    let broker = MemoryBroker::new();
    flaky::message(2).send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["flaky"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(FLAKY_CALLS.load(SeqCst), 3);
    assert!(broker.dead_letters("flaky").is_empty());
}

static DOOMED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[actor(
    queue = "doomed",
    max_retries = 2,
    min_backoff = "1ms",
    max_backoff = "5ms"
)]
async fn doomed() -> Result<(), String> {
    DOOMED_CALLS.fetch_add(1, SeqCst);
    Err("the disk is full".into())
}

#[tokio::test]
async fn exhausted_retries_dead_letter_the_message() {
    let broker = MemoryBroker::new();
    let id = doomed::message().send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["doomed"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(DOOMED_CALLS.load(SeqCst), 3, "one attempt and two retries");
    let dead = broker.dead_letters("doomed");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("the disk is full"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[0].reason.contains("retries exhausted"),
        "{}",
        dead[0].reason
    );
    let m = Message::decode(&dead[0].payload).unwrap();
    assert_eq!(
        m.message_id, id,
        "the message id stays the same across retries"
    );
    assert_eq!(m.options["retries"], 2);
    assert_eq!(m.options["traceback"], "the disk is full");
}

#[tokio::test]
async fn per_message_options_override_the_actor() {
    let broker = MemoryBroker::new();
    flaky_twin::message()
        .with_max_retries(0)
        .send(&broker)
        .await
        .unwrap();
    let w = start(worker(broker.clone(), &["twin"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(
        TWIN_CALLS.load(SeqCst),
        1,
        "max_retries = 0 on the message: no retry"
    );
    assert_eq!(broker.dead_letters("twin").len(), 1);
}

static TWIN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "twin", max_retries = 5, min_backoff = "1ms")]
async fn flaky_twin() -> Result<(), String> {
    TWIN_CALLS.fetch_add(1, SeqCst);
    Err("no".into())
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "panicky", min_backoff = "1ms", max_backoff = "2ms")]
async fn panicky() {
    if PANICS.fetch_add(1, SeqCst) == 0 {
        panic!("first attempt panics");
    }
}

#[tokio::test]
async fn a_panic_is_a_failed_attempt_and_the_worker_keeps_going() {
    let broker = MemoryBroker::new();
    panicky::message().send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["panicky"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(PANICS.load(SeqCst), 2, "retried after the panic");
    assert!(broker.dead_letters("panicky").is_empty());
}

static BLOCKING_PANICS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "panicky_blocking", max_retries = 0)]
fn panicky_blocking() {
    BLOCKING_PANICS.fetch_add(1, SeqCst);
    panic!("a plain fn panics on the blocking pool");
}

#[tokio::test]
async fn a_panic_in_a_plain_fn_is_caught_too() {
    let broker = MemoryBroker::new();
    panicky_blocking::message().send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["panicky_blocking"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let dead = broker.dead_letters("panicky_blocking");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("a plain fn panics"),
        "{}",
        dead[0].reason
    );
}

#[actor(queue = "slow", time_limit = "50ms", max_retries = 0)]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[tokio::test]
async fn the_time_limit_cancels_an_async_actor() {
    let broker = MemoryBroker::new();
    slow::message().send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["slow"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let dead = broker.dead_letters("slow");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("time limit"), "{}", dead[0].reason);
}

static OLD_CALLS: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "aged", max_age = "1s")]
async fn aged() {
    OLD_CALLS.fetch_add(1, SeqCst);
}

#[tokio::test]
async fn messages_older_than_max_age_are_dead_lettered_unrun() {
    let broker = MemoryBroker::new();
    let mut old = aged::message().into_message().unwrap();
    old.message_timestamp = (now_millis() - 5_000).into();
    broker.enqueue(old, None).await.unwrap();
    let w = start(worker(broker.clone(), &["aged"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    assert_eq!(OLD_CALLS.load(SeqCst), 0);
    assert!(broker.dead_letters("aged")[0].reason.contains("max_age"));
}

#[tokio::test]
async fn unknown_actors_and_undecodable_payloads_are_dead_lettered() {
    let broker = MemoryBroker::new();
    broker
        .enqueue(Message::new("mixed", "no_such_actor", vec![]), None)
        .await
        .unwrap();
    broker.enqueue_raw("mixed", b"{not json".to_vec());
    broker.enqueue_raw(
        "mixed",
        br#"{"queue_name":"mixed","actor_name":"add","args":["x"],"kwargs":{},"options":{}}"#
            .to_vec(),
    );
    let w = start(worker(broker.clone(), &["mixed"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let mut reasons: Vec<_> = broker
        .dead_letters("mixed")
        .into_iter()
        .map(|d| d.reason)
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unknown actor `no_such_actor`")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("undecodable")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("lacks the argument `b`")),
        "{reasons:?}"
    );
}

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MAX_RUNNING: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "bounded")]
async fn bounded() {
    let now = RUNNING.fetch_add(1, SeqCst) + 1;
    MAX_RUNNING.fetch_max(now, SeqCst);
    // Work that takes a while, so that tasks overlap.
    tokio::time::sleep(Duration::from_millis(5)).await;
    RUNNING.fetch_sub(1, SeqCst);
}

#[tokio::test]
async fn no_more_than_the_concurrency_run_at_once() {
    let broker = MemoryBroker::new();
    for _ in 0..60 {
        bounded::message().send(&broker).await.unwrap();
    }
    let w = start(worker(broker.clone(), &["bounded"]).concurrency(3));
    broker.join(T).await.unwrap();
    w.stop().await;
    let max = MAX_RUNNING.load(SeqCst);
    assert!(max <= 3, "{max} ran at once");
    assert_eq!(max, 3, "the worker uses its concurrency");
}

static GATE: Semaphore = Semaphore::const_new(0);
static GATED_STARTED: AtomicUsize = AtomicUsize::new(0);
static GATED_DONE: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "gated")]
async fn gated() {
    GATED_STARTED.fetch_add(1, SeqCst);
    GATE.acquire().await.unwrap().forget();
    GATED_DONE.fetch_add(1, SeqCst);
}

#[tokio::test]
async fn shutdown_finishes_running_tasks_and_gives_back_the_rest() {
    let broker = MemoryBroker::new();
    for _ in 0..5 {
        gated::message().send(&broker).await.unwrap();
    }
    let w = start(
        worker(broker.clone(), &["gated"])
            .concurrency(1)
            .prefetch(5),
    );
    eventually(T, "the first task to start", || async {
        GATED_STARTED.load(SeqCst) == 1
    })
    .await;
    eventually(T, "the worker to prefetch all five", || async {
        broker.queue_stats("gated").await.unwrap().in_flight == 5
    })
    .await;
    let stopping = tokio::spawn(w.stop());
    // The running task may finish during the grace period.
    GATE.add_permits(1);
    stopping.await.unwrap();
    assert_eq!(GATED_DONE.load(SeqCst), 1);
    let stats = broker.queue_stats("gated").await.unwrap();
    assert_eq!(
        (stats.ready, stats.in_flight, stats.dead),
        (4, 0, 0),
        "the four unstarted are back"
    );
    GATE.add_permits(4);
}

#[actor(queue = "stuck")]
async fn stuck() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn tasks_still_running_after_the_grace_period_are_given_back() {
    let broker = MemoryBroker::new();
    stuck::message().send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["stuck"]).grace_period(Duration::from_millis(50)));
    eventually(T, "the task to start", || async {
        broker.queue_stats("stuck").await.unwrap().in_flight == 1
    })
    .await;
    w.stop().await;
    let stats = broker.queue_stats("stuck").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight), (1, 0));
}

#[actor(queue = "stuck_forced")]
async fn stuck_forced() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn the_force_future_stops_the_grace_period_at_once() {
    let broker = MemoryBroker::new();
    stuck_forced::message().send(&broker).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (force, forced) = tokio::sync::oneshot::channel::<()>();
    // A grace period far longer than the test's deadline: only `force` can end it.
    let w = worker(broker.clone(), &["stuck_forced"]).grace_period(Duration::from_secs(3600));
    let run = tokio::spawn(w.run_until_or_forced(
        async move {
            let _ = stopped.await;
        },
        async move {
            let _ = forced.await;
        },
    ));
    eventually(T, "the task to start", || async {
        broker.queue_stats("stuck_forced").await.unwrap().in_flight == 1
    })
    .await;
    stop.send(()).unwrap();
    // Still in its grace period: the task runs on.
    eventually(T, "the worker to stop fetching", || async {
        broker.queue_stats("stuck_forced").await.unwrap().in_flight == 1
    })
    .await;
    assert!(!run.is_finished());
    force.send(()).unwrap();
    tokio::time::timeout(T, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let stats = broker.queue_stats("stuck_forced").await.unwrap();
    assert_eq!(
        (stats.ready, stats.in_flight),
        (1, 0),
        "the message is given back"
    );
}

#[actor(queue = "later")]
async fn later(sent_at: u64) {
    LATER_LAG.lock().unwrap().push(now_millis() - sent_at);
}

static LATER_LAG: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[tokio::test]
async fn delayed_messages_wait_for_their_eta() {
    let broker = MemoryBroker::new();
    let now = now_millis();
    later::message(now)
        .with_delay(Duration::from_millis(200))
        .send(&broker)
        .await
        .unwrap();
    assert_eq!(broker.queue_stats("later").await.unwrap().delayed, 1);
    let w = start(worker(broker.clone(), &["later"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let lag = LATER_LAG.lock().unwrap().clone();
    assert_eq!(lag.len(), 1);
    assert!(lag[0] >= 200, "ran {}ms after sending", lag[0]);
}

/// An argument type whose `Deserialize` panics.
#[derive(serde::Serialize)]
struct Explosive;

impl<'de> serde::Deserialize<'de> for Explosive {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("boom while decoding");
    }
}

#[actor(queue = "explosive")]
async fn explosive(_x: Explosive) {}

#[tokio::test]
async fn a_panic_while_decoding_arguments_dead_letters_the_message() {
    let broker = MemoryBroker::new();
    explosive::message(Explosive).send(&broker).await.unwrap();
    let w = start(worker(broker.clone(), &["explosive"]));
    broker.join(T).await.unwrap();
    w.stop().await;
    let dead = broker.dead_letters("explosive");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("boom while decoding"),
        "{}",
        dead[0].reason
    );
}
