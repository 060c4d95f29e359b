//! [`RedisBroker`]: queues and workflow state on Redis, in dramatiq's layout.
//!
//! Keys, under a namespace `ns` (default `dramatiq`), exactly as Python's dramatiq uses them
//! (the last two are ours; dramatiq never touches them):
//!
//! | Key | Type | Content |
//! |---|---|---|
//! | `ns:Q` | list | receipts (`redis_message_id`) waiting; `RPUSH` to enqueue, `LPOP` to fetch |
//! | `ns:Q.msgs` | hash | receipt -> encoded message, until acked |
//! | `ns:Q.DQ`, `ns:Q.DQ.msgs` | list, hash | delayed messages, with `options.eta` |
//! | `ns:Q.XQ`, `ns:Q.XQ.msgs` | zset, hash | dead letters, scored by time (ms) |
//! | `ns:__acks__.<worker>.Q` | set | receipts a worker fetched and has not settled |
//! | `ns:__heartbeats__` | zset | worker id -> last heartbeat (ms) |
//! | `ns:wf:{<id>}` | hash | one workflow |
//! | `ns:__wf_pending__` | zset | workflow id -> last progress (ms), while it has tasks left to start |
//! | `ns:__wf_stopped__` | zset | failed or cancelled workflow id -> when its hash expires (ms) |
//!
//! The layout of a workflow's hash (version 3, in its field `v`) is described in
//! `lua/common.lua`; a big plan is first uploaded to `ns:wf:{<id>}:staging:<nonce>`, which
//! expires after a day unless the submission renames it into place. Every change is one Lua
//! script call; the scripts live in `workflow-runtime/lua/`. A script checks everything before
//! its first write, so a script that fails (a key of the wrong type, corrupt data, a workflow
//! of another layout) changes nothing. The scripts are the functions of one Redis function
//! library (`FUNCTION LOAD`, then `FCALL`), loaded when the broker connects and again if Redis
//! lost it.
//!
//! A message of a workflow node (its receipt is exactly `<node>:<nonce>[.<uuid>]@<id>`) whose
//! workflow failed or was cancelled is not handed out: tasks of a stopped workflow that are
//! still queued, were given back, or come back from a dead worker, never run. Taking messages
//! looks their workflows up in `ns:__wf_stopped__` (one `ZMSCORE` per batch) and reads only
//! the hashes of those found, not those of running workflows; the completion of a message
//! that belongs to no running submission (a workflow deleted by hand, an earlier one with the
//! same id) changes nothing. Messages with any other receipt are plain messages. A node is
//! `Running` while a worker holds its current message (taken from its queue, not settled):
//! this is read from the workers' acks sets when the status is asked for, not written on every
//! fetch.
//!
//! Settling and fetching share a request when they can ([`Broker::settle_and_take`]): the
//! script that settles a batch takes, for the queues it pushed onto, up to the room the worker
//! offered, so a chain's next step comes back with the previous step's settlement (one
//! request per step). A message pushed onto an empty queue goes to the worker directly.
//!
//! Big workflows are handled in slices, so that no script keeps Redis busy for more than about
//! 0.1 s: a start set of more than 5 000 tasks is started 5 000 per call (the submitting
//! client, later completions and background tasks of [`RedisBroker`] go on with it; a call
//! always starts at least one task of each workflow it leaves with tasks to start, so that a
//! task in flight carries the rest, and heartbeats go on with workflows of `ns:__wf_pending__`
//! that made no progress for a heartbeat interval, so that nothing depends on one process),
//! the queued tasks of a stopped workflow are skipped 5 000 nodes per call (and dropped by
//! `fetch` in the meantime), and the status of a workflow is read with plain `HMGET`s of
//! 10 000 fields.
//!
//! Needs Redis 7.0 or later (functions: the scripts are one library, loaded once).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, RwLock};
use tracing::{debug, warn};

use super::{BoxFuture, Broker, Delivery, QueueStats, Room, Settled, Settlement};
use crate::engine::{dq_name, is_valid_queue_name, now_millis, q_name, Message, WorkflowRef};
use crate::engine::{NodeState, NodeStatus, Plan, WorkflowFailure, WorkflowState, WorkflowStatus};
use crate::error::{Error, Result};

mod plan;
mod scripts;

/// dramatiq's default namespace.
pub const DEFAULT_NAMESPACE: &str = "dramatiq";
/// dramatiq's default heartbeat timeout: a worker silent for longer is dead.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);
/// dramatiq's default time dead letters are kept.
pub const DEFAULT_DEAD_MESSAGE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most messages one fetch takes.
const MAX_FETCH: usize = 1000;
/// Plans larger than this are uploaded in chunks to a staging key before they are activated.
const INLINE_PLAN_BYTES: usize = 1 << 20;
/// Size of one chunk of a staged plan.
const STAGING_CHUNK_BYTES: usize = 512 << 10;
/// How long an uploaded plan waits for its activation before it expires.
const STAGING_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a step that is safe to repeat (submitting, starting and skipping the tasks of
/// big workflows) is tried when it fails with a transient error (a lost connection, a
/// timeout).
const SUBMIT_ATTEMPTS: u32 = 5;
/// Node states read by one `HMGET` of a status.
const STATUS_SLICE: usize = 10_000;
/// `SCAN` calls per heartbeat in the search for dead workers' acks sets, and keys per call.
const SCAN_STEPS: usize = 4;
const SCAN_COUNT: usize = 1000;
/// Heartbeat calls in a row at most while dead letters are left to expire.
const EXPIRE_ROUNDS: usize = 10;
/// A dead worker not seen dead for this long is no longer tracked.
const DEAD_WORKER_FORGET: Duration = Duration::from_secs(3600);
/// The layout version of workflow hashes (field `v`, see `lua/common.lua`).
const LAYOUT: &str = "3";

/// A broker on Redis, wire-compatible with Python dramatiq's `RedisBroker`.
///
/// Python producers can enqueue to Rust actors and the other way round; Rust and Python
/// workers can consume the same queues, recover each other's messages and see each other's
/// heartbeats. Workflows are advanced by Lua scripts, atomically and exactly once per node.
///
/// Clones share one connection ([`ConnectionManager`], which reconnects after a Redis
/// restart) and one worker id.
///
/// The queues of workflow tasks must be consumed by Rust workers: a Python worker would run a
/// workflow task's message (it is a plain dramatiq message with an extra `workflow` option) but
/// not advance its workflow.
///
/// ```no_run
/// # async fn run() -> workflow_runtime::Result<()> {
/// use std::time::Duration;
/// use workflow_runtime::{Broker, Message, RedisBroker};
///
/// let broker = RedisBroker::builder("redis://127.0.0.1:6379")
///     .namespace("dramatiq")
///     .heartbeat_timeout(Duration::from_secs(60))
///     .connect()
///     .await?;
/// broker.enqueue(Message::new("default", "add", vec![1.into(), 2.into()]), None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    ns: String,
    worker_id: String,
    heartbeat_timeout: Duration,
    dead_message_ttl: Duration,
    max_retention: Option<Duration>,
    /// Per exact queue name: local wake-ups.
    wakers: Mutex<HashMap<String, Arc<Waker>>>,
    /// Receipts fetched by this broker and not settled yet, by exact queue.
    held: Mutex<HashMap<String, HashSet<String>>>,
    /// Fetches hold it shared; the sweep of orphaned receipts holds it exclusively.
    fetch_gate: RwLock<()>,
    /// A fetch failed: its messages may be in our acks sets without our knowing.
    suspect: AtomicBool,
    /// When this worker's heartbeat was last written (ms), 0 if never.
    last_beat: AtomicU64,
    /// Requests sent to Redis.
    round_trips: AtomicU64,
    dead: Mutex<DeadWorkers>,
}

/// What the heartbeats know about dead workers.
///
/// The heartbeat script gives back their messages on the queues this worker consumes; the
/// acks sets they left on other queues are found by one `SCAN` over all acks sets, a few
/// steps per heartbeat. A dead worker of which a whole `SCAN` found no acks set is removed
/// from the heartbeats.
#[derive(Default)]
struct DeadWorkers {
    /// Dead workers the heartbeats reported: when first and when last.
    known: HashMap<String, (Instant, Instant)>,
    /// The `SCAN` in progress.
    scan: Option<AcksScan>,
    /// Dead workers with no acks set left, to remove from the heartbeats.
    forget: Vec<String>,
    /// Where the next heartbeat's page of dead workers starts.
    offset: u64,
}

struct AcksScan {
    cursor: u64,
    started: Instant,
    /// Workers some acks set of which this scan found.
    found: HashSet<String>,
}

/// Local wake-ups of one queue: consumers of this process wait on it; enqueues of this
/// process ring it.
#[derive(Default)]
struct Waker {
    notify: Notify,
    /// Bumped on every wake-up.
    generation: AtomicU64,
    /// The generation when the last fetch that found nothing started.
    empty_at: AtomicU64,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("namespace", &self.inner.ns)
            .field("worker_id", &self.inner.worker_id)
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`RedisBroker`]; made by [`RedisBroker::builder`].
#[derive(Clone, Debug)]
pub struct RedisBrokerBuilder {
    url: String,
    namespace: String,
    heartbeat_timeout: Duration,
    dead_message_ttl: Duration,
    retention: Option<Duration>,
    response_timeout: Duration,
    connection_timeout: Duration,
}

impl RedisBrokerBuilder {
    /// The prefix of every key (default `dramatiq`, as in Python).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long a worker may go without a heartbeat before its unacked messages are given to
    /// others (default 60 s, as in Python). Heartbeats are sent every sixth of it, at most
    /// every 10 s. Use the same value, or a larger one, as every Python peer.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// How long dead letters are kept (default 7 days, as in Python).
    pub fn dead_message_ttl(mut self, ttl: Duration) -> Self {
        self.dead_message_ttl = ttl;
        self
    }

    /// The longest time the state of a finished workflow is kept. A workflow's own
    /// [`retention`](crate::Workflow::retention) (default 7 days) applies when it is shorter.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How long to wait for the answer to one command or script (default 10 s). No script
    /// of this broker runs for more than about 0.1 s, even for the largest workflows (they
    /// are submitted, started and skipped in slices), but a busy or remote Redis answers
    /// later; steps that are safe to repeat (submitting a workflow) are retried after a
    /// timeout.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long one attempt to connect may take (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Connects; fails if Redis cannot be reached or a setting is out of range.
    pub async fn connect(self) -> Result<RedisBroker> {
        if self.namespace.is_empty() || self.namespace.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(Error::Config(format!(
                "invalid namespace `{}`: it must be non-empty and without spaces",
                self.namespace
            )));
        }
        if self.heartbeat_timeout < Duration::from_millis(100) {
            return Err(Error::Config(format!(
                "heartbeat_timeout {:?} is too short: use at least 100 ms (dramatiq uses 60 s)",
                self.heartbeat_timeout
            )));
        }
        if self.response_timeout.is_zero() || self.connection_timeout.is_zero() {
            return Err(Error::Config(
                "response and connection timeouts must not be zero".into(),
            ));
        }
        let client = redis::Client::open(self.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_max_delay(Duration::from_secs(1));
        let mut conn = ConnectionManager::new_with_config(client, config).await?;
        scripts::load(&mut conn).await.map_err(|e| {
            if e.to_string().contains("unknown command") {
                Error::Config(format!(
                    "Redis at {} has no functions (FUNCTION LOAD): workflow needs Redis 7.0 \
                     or later",
                    self.url
                ))
            } else {
                e.into()
            }
        })?;
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                conn,
                ns: self.namespace,
                worker_id: uuid::Uuid::new_v4().to_string(),
                heartbeat_timeout: self.heartbeat_timeout,
                dead_message_ttl: self.dead_message_ttl,
                max_retention: self.retention,
                wakers: Mutex::default(),
                held: Mutex::default(),
                fetch_gate: RwLock::new(()),
                suspect: AtomicBool::new(false),
                last_beat: AtomicU64::new(0),
                round_trips: AtomicU64::new(0),
                dead: Mutex::default(),
            }),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisBroker {
    /// Connects to `url` (`redis://host:port/db`) with the default settings.
    pub async fn connect(url: &str) -> Result<RedisBroker> {
        RedisBroker::builder(url).connect().await
    }

    /// A builder for a broker on `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisBrokerBuilder {
        RedisBrokerBuilder {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.into(),
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            dead_message_ttl: DEFAULT_DEAD_MESSAGE_TTL,
            retention: None,
            response_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(5),
        }
    }

    /// The namespace of its keys.
    pub fn namespace(&self) -> &str {
        &self.inner.ns
    }

    /// This broker's worker id (dramatiq's `broker_id`): names its acks sets and heartbeat.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// How many requests this broker (and its clones) sent to Redis so far: a script call
    /// (fetch, settle, enqueue, submit, ...) or a plain command counts as one. For
    /// benchmarks: the cost of a workflow task in round trips.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// The connection, for one request.
    fn conn(&self) -> ConnectionManager {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        self.inner.conn.clone()
    }

    fn waker(&self, queue: &str) -> Arc<Waker> {
        let mut wakers = lock(&self.inner.wakers);
        match wakers.get(queue) {
            Some(w) => w.clone(),
            None => wakers.entry(queue.to_owned()).or_default().clone(),
        }
    }

    /// Wakes this process's consumers of the exact queue `queue`.
    fn wake(&self, queue: &str) {
        let w = self.waker(queue);
        w.generation.fetch_add(1, Ordering::AcqRel);
        w.notify.notify_waiters();
    }

    fn beat_due(&self) -> bool {
        let last = self.inner.last_beat.load(Ordering::Acquire);
        last == 0 || now_millis().saturating_sub(last) >= millis(self.heartbeat_interval())
    }

    fn acks_key(&self, queue: &str) -> String {
        format!(
            "{}:__acks__.{}.{}",
            self.inner.ns, self.inner.worker_id, queue
        )
    }

    /// Gives back receipts that are in this worker's acks sets but were never handed out (the
    /// answer to a fetch was lost, e.g. when Redis restarted).
    async fn sweep_orphans(&self, queues: &[String]) -> Result<()> {
        let _gate = self.inner.fetch_gate.write().await;
        let mut orphans = Vec::new();
        for q in queues {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(self.acks_key(q))
                .query_async(&mut self.conn())
                .await?;
            let held = lock(&self.inner.held);
            let mine = held.get(q.as_str());
            let queue: Arc<str> = Arc::from(q.as_str());
            for receipt in members {
                if !mine.is_some_and(|m| m.contains(&receipt)) {
                    orphans.push(Settlement::Requeue {
                        queue: queue.clone(),
                        receipt,
                    });
                }
            }
        }
        if !orphans.is_empty() {
            warn!(
                messages = orphans.len(),
                "giving back messages whose fetch was interrupted"
            );
            self.settle_batch(&orphans).await?;
        }
        Ok(())
    }

    /// Goes on with the `SCAN` of all acks sets, [`SCAN_STEPS`] calls at most; when it is
    /// complete, the dead workers known since before it started of which it found no acks set
    /// are to be forgotten (by the next heartbeat, which checks that they are still dead).
    async fn scan_dead(&self) -> Result<()> {
        let mut scan = {
            let mut d = lock(&self.inner.dead);
            let now = Instant::now();
            d.known
                .retain(|_, (_, last)| now.duration_since(*last) < DEAD_WORKER_FORGET);
            match d.scan.take() {
                Some(scan) => scan,
                None if d.known.is_empty() => return Ok(()),
                None => AcksScan {
                    cursor: 0,
                    started: now,
                    found: HashSet::new(),
                },
            }
        };
        let prefix = format!("{}:__acks__.", self.inner.ns);
        let pattern = format!("{}*", glob_escape(&prefix));
        let mut complete = false;
        for _ in 0..SCAN_STEPS {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(scan.cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn())
                .await?;
            for key in keys {
                // `ns:__acks__.<worker>.<queue>`; worker ids (UUIDs) have no dot.
                if let Some(worker) = key.strip_prefix(&prefix).and_then(|r| r.split('.').next()) {
                    scan.found.insert(worker.to_owned());
                }
            }
            scan.cursor = next;
            if next == 0 {
                complete = true;
                break;
            }
        }
        let mut d = lock(&self.inner.dead);
        if complete {
            let gone: Vec<String> = d
                .known
                .iter()
                .filter(|(w, (first, _))| *first < scan.started && !scan.found.contains(*w))
                .map(|(w, _)| w.clone())
                .collect();
            for w in &gone {
                d.known.remove(w);
            }
            d.forget.extend(gone);
        } else {
            d.scan = Some(scan);
        }
        Ok(())
    }

    async fn settle_batch(&self, batch: &[Settlement]) -> Result<Vec<String>> {
        Ok(self.settle_take(batch, &[]).await?.ready)
    }

    /// Settles `batch` and takes messages of the queues in `rooms` that it pushed onto (see
    /// `settle.lua`).
    async fn settle_take(&self, batch: &[Settlement], rooms: &[Room]) -> Result<Settled> {
        let rooms: Vec<&Room> = rooms
            .iter()
            .filter(|r| {
                r.max > 0 && plan::valid_target_queue(&r.queue) && !r.queue.ends_with(".DQ")
            })
            .collect();
        if batch.is_empty() {
            return Ok(Settled::default());
        }
        // Like a fetch: a sweep of orphaned receipts must not run while messages are taken.
        let _gate = if rooms.is_empty() {
            None
        } else {
            Some(self.inner.fetch_gate.read().await)
        };
        let generations: Vec<u64> = rooms
            .iter()
            .map(|r| self.waker(&r.queue).generation.load(Ordering::Acquire))
            .collect();
        let mut inv = scripts::SETTLE.prepare_invoke();
        inv.arg(&self.inner.ns)
            .arg(now_millis())
            .arg(&self.inner.worker_id)
            .arg(rooms.len());
        for r in &rooms {
            inv.arg(&*r.queue).arg(r.max.min(MAX_FETCH));
        }
        for s in batch {
            match s {
                Settlement::Ack { queue, receipt } => {
                    inv.arg("a")
                        .arg(&**queue)
                        .arg(receipt)
                        .arg("")
                        .arg("")
                        .arg("")
                        .arg("")
                        .arg("");
                }
                Settlement::Complete {
                    queue,
                    receipt,
                    workflow,
                } => {
                    inv.arg("c")
                        .arg(&**queue)
                        .arg(receipt)
                        .arg(&workflow.id)
                        .arg(workflow.node);
                    inv.arg("").arg("").arg("");
                }
                Settlement::Replace {
                    queue,
                    receipt,
                    message,
                    delay,
                } => {
                    let wf = message.workflow();
                    let rid = match &wf {
                        Some(w) => retry_receipt(receipt, w),
                        None => uuid::Uuid::new_v4().to_string(),
                    };
                    let (target, payload) = prepare(message.clone(), *delay, &rid);
                    inv.arg("r").arg(&**queue).arg(receipt);
                    match &wf {
                        Some(w) => inv.arg(&w.id).arg(w.node),
                        None => inv.arg("").arg(""),
                    };
                    inv.arg(target).arg(rid).arg(payload);
                }
                Settlement::DeadLetter {
                    queue,
                    receipt,
                    reason,
                    workflow,
                } => {
                    inv.arg("x").arg(&**queue).arg(receipt);
                    match workflow {
                        Some(w) => inv.arg(&w.id).arg(w.node),
                        None => inv.arg("").arg(""),
                    };
                    let reason = serde_json::to_string(reason).expect("a string always serializes");
                    inv.arg(reason).arg("").arg("");
                }
                Settlement::Requeue { queue, receipt } => {
                    inv.arg("q")
                        .arg(&**queue)
                        .arg(receipt)
                        .arg("")
                        .arg("")
                        .arg("")
                        .arg("")
                        .arg("");
                }
            }
        }
        type Reply = (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<Vec<u8>>,
            Vec<String>,
        );
        let (woke, sweeps, pending, given, drained): Reply =
            inv.invoke_async(&mut self.conn()).await.inspect_err(|_| {
                // Messages may have been taken without our knowing.
                if !rooms.is_empty() {
                    self.inner.suspect.store(true, Ordering::Release);
                }
            })?;
        let mut taken = Vec::with_capacity(given.len() / 3);
        {
            let mut held = lock(&self.inner.held);
            for s in batch {
                if let Some(set) = held.get_mut(&**s.queue()) {
                    set.remove(s.receipt());
                }
            }
            let mut it = given.into_iter();
            while let (Some(queue), Some(receipt), Some(payload)) =
                (it.next(), it.next(), it.next())
            {
                let queue = String::from_utf8_lossy(&queue);
                let Some(room) = rooms.iter().find(|r| *r.queue == *queue) else {
                    // Not a queue offered (the scripts never do this): in our acks set and
                    // unknown here, so the next heartbeat's orphan sweep gives it back.
                    self.inner.suspect.store(true, Ordering::Release);
                    continue;
                };
                let receipt = String::from_utf8_lossy(&receipt).into_owned();
                held.entry(queue.into_owned())
                    .or_default()
                    .insert(receipt.clone());
                taken.push(Delivery {
                    queue: room.queue.clone(),
                    receipt,
                    payload,
                });
            }
        }
        self.tend(sweeps, pending);
        for q in &drained {
            if let Some(at) = rooms.iter().position(|r| *r.queue == **q) {
                // Nothing left on it as of before this call.
                self.waker(q)
                    .empty_at
                    .store(generations[at], Ordering::Release);
            }
        }
        let ready = self.woke(woke);
        Ok(Settled { ready, taken })
    }

    /// In the background: skips the rest of the queued tasks of big workflows that stopped
    /// (`sweeps`: id, node, id, node, ...) and starts the rest of the big start sets of
    /// `pending` workflows. Neither depends on it: fetch drops the messages of stopped
    /// workflows, and a workflow with tasks left to start keeps a task in flight (whose
    /// completion goes on starting) and is in `ns:__wf_pending__`, which heartbeats work
    /// through. It only makes both happen sooner.
    fn tend(&self, sweeps: Vec<String>, pending: Vec<String>) {
        if sweeps.is_empty() && pending.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let b = self.clone();
        rt.spawn(async move {
            for pair in sweeps.chunks(2) {
                if let [id, from] = pair {
                    let Ok(from) = from.parse() else { continue };
                    if let Err(e) = b.sweep_all(id, from).await {
                        warn!(workflow = %id, error = %e, "skipping the queued tasks of a stopped workflow failed; they are dropped when fetched");
                    }
                }
            }
            for id in pending {
                if let Err(e) = b.resume_all(&id).await {
                    warn!(workflow = %id, error = %e, "starting the rest of a workflow's tasks failed; heartbeats go on with it");
                }
            }
        });
    }

    /// Skips the queued tasks of the stopped workflow `id` from node `from` on, a slice per
    /// call, until the script says it is done (-1).
    async fn sweep_all(&self, id: &str, mut from: i64) -> Result<()> {
        while from >= 0 {
            from = retry_transient(|| async {
                Ok(scripts::SWEEP
                    .prepare_invoke()
                    .arg(&self.inner.ns)
                    .arg(now_millis())
                    .arg(id)
                    .arg(from)
                    .invoke_async(&mut self.conn())
                    .await?)
            })
            .await?;
        }
        Ok(())
    }

    /// Starts one slice of the tasks of `id`'s start sets that are left to start; whether
    /// tasks are still left.
    async fn resume_once(&self, id: &str) -> Result<bool> {
        let (woke, _, pending): (Vec<String>, Vec<String>, Vec<String>) =
            retry_transient(|| async {
                Ok(scripts::RESUME
                    .prepare_invoke()
                    .arg(&self.inner.ns)
                    .arg(now_millis())
                    .arg(id)
                    .invoke_async(&mut self.conn())
                    .await?)
            })
            .await?;
        self.woke(woke);
        Ok(pending.iter().any(|p| p == id))
    }

    /// Starts the tasks of `id`'s start sets that are left to start, a slice per call.
    async fn resume_all(&self, id: &str) -> Result<()> {
        while self.resume_once(id).await? {}
        Ok(())
    }

    /// Wakes the local consumers of `woke` (exact names); returns the canonical queues that
    /// got ready (not delayed) messages.
    fn woke(&self, woke: Vec<String>) -> Vec<String> {
        for q in &woke {
            self.wake(q);
        }
        let mut ready: Vec<String> = woke
            .into_iter()
            .filter(|q| !q.ends_with(".DQ"))
            .map(|q| q_name(&q).to_owned())
            .collect();
        ready.sort();
        ready.dedup();
        ready
    }

    /// Submits a plan. Idempotent (a plan submitted again is recognized by its digest), so
    /// every step is retried after a transient error, whether or not it went through.
    async fn submit(&self, plan: Plan) -> Result<()> {
        let enc = plan::encode(&plan, self.inner.max_retention)?;
        let staged = enc.bytes > INLINE_PLAN_BYTES;
        // Per submission: in the receipts of its messages (see lua/common.lua).
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        if staged {
            let staging = format!("{}:wf:{{{}}}:staging:{nonce}", self.inner.ns, plan.id);
            let mut first = true;
            let mut i = 0;
            while i < enc.fields.len() {
                // One chunk, with the staging key's expiry: a client that dies half-way
                // leaves nothing behind for long.
                let mut pipe = redis::pipe();
                pipe.atomic();
                if first {
                    pipe.cmd("DEL").arg(&staging).ignore();
                }
                let chunk = pipe.cmd("HSET").arg(&staging);
                let mut size = 0;
                while i < enc.fields.len() && size < STAGING_CHUNK_BYTES {
                    chunk.arg(&enc.fields[i]).arg(&enc.fields[i + 1]);
                    size += enc.fields[i].len() + enc.fields[i + 1].len();
                    i += 2;
                }
                chunk.ignore();
                pipe.cmd("PEXPIRE")
                    .arg(&staging)
                    .arg(millis(STAGING_TTL))
                    .ignore();
                retry_transient(|| async { Ok(pipe.query_async::<()>(&mut self.conn()).await?) })
                    .await?;
                first = false;
            }
            debug!(workflow = %plan.id, bytes = enc.bytes, "plan uploaded in chunks");
        }
        let mut inv = scripts::SUBMIT.prepare_invoke();
        inv.arg(&self.inner.ns).arg(now_millis()).arg(&plan.id);
        inv.arg(&nonce).arg(&enc.digest);
        inv.arg(if staged { "1" } else { "0" }).arg(&enc.entry);
        if !staged {
            for f in &enc.fields {
                inv.arg(f);
            }
        }
        let (woke, _, pending): (Vec<String>, Vec<String>, Vec<String>) =
            retry_transient(|| async { Ok(inv.invoke_async(&mut self.conn()).await?) }).await?;
        self.woke(woke);
        // The workflow exists from here on: an error must not make the caller submit it
        // again. What is left to start is in `ns:__wf_pending__`, which heartbeats (and its
        // own tasks' completions) go on with.
        if !pending.is_empty() {
            if let Err(e) = self.resume_all(&plan.id).await {
                warn!(workflow = %plan.id, error = %e, "submitted, but starting the rest of its entry tasks failed; heartbeats go on with it");
            }
        }
        Ok(())
    }

    fn wf_key(&self, id: &str) -> String {
        format!("{}:wf:{{{id}}}", self.inner.ns)
    }

    /// The state and failure of a workflow: one `HMGET`.
    async fn state(&self, id: &str) -> Result<(WorkflowState, Option<WorkflowFailure>)> {
        if !plan::valid_workflow_id(id) {
            return Err(Error::UnknownWorkflow(id.to_owned()));
        }
        let (state, fail, v): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(self.wf_key(id))
                .arg(&["state", "fail", "v"])
                .query_async(&mut self.conn())
                .await?;
        let Some(state) = state else {
            return Err(Error::UnknownWorkflow(id.to_owned()));
        };
        check_layout(id, v.as_deref())?;
        let state = WorkflowState::parse(&state).ok_or_else(|| corrupt(id, "state"))?;
        Ok((state, fail.map(|f| failure(id, &f)).transpose()?))
    }

    /// The status of a workflow: its state, then its nodes' states in slices of
    /// [`STATUS_SLICE`] (pipelined plain `HMGET`s, none of which keeps Redis busy for long).
    /// A started node is running while its current message is in the acks set of a worker
    /// with a heartbeat (taken from its queue, not settled): two more pipelined reads when
    /// the workflow has started nodes.
    async fn status(&self, id: &str) -> Result<WorkflowStatus> {
        if !plan::valid_workflow_id(id) {
            return Err(Error::UnknownWorkflow(id.to_owned()));
        }
        let key = self.wf_key(id);
        type Head = (
            Option<String>,
            Option<usize>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(&key)
            .arg(&["state", "n", "an", "ai", "fail", "v", "nonce"]);
        pipe.cmd("ZRANGE")
            .arg(format!("{}:__heartbeats__", self.inner.ns))
            .arg(0)
            .arg(-1);
        let ((state, n, an, ai, fail, v, nonce), workers): (Head, Vec<String>) =
            pipe.query_async(&mut self.conn()).await?;
        let Some(state) = state else {
            return Err(Error::UnknownWorkflow(id.to_owned()));
        };
        check_layout(id, v.as_deref())?;
        let state = WorkflowState::parse(&state).ok_or_else(|| corrupt(id, "state"))?;
        let (Some(n), Some(an), Some(ai), Some(nonce)) = (n, an, ai, nonce) else {
            return Err(corrupt(id, "n, an, ai, nonce"));
        };
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&an).map_err(|_| corrupt(id, "an"))?;
        if n > 0 && (ai.len() % n != 0 || ai.is_empty()) {
            return Err(corrupt(id, "ai"));
        }
        let width = ai.len().checked_div(n).unwrap_or(1);
        let mut states: Vec<Option<String>> = Vec::with_capacity(n);
        if n > 0 {
            let mut pipe = redis::pipe();
            for from in (0..n).step_by(STATUS_SLICE) {
                let cmd = pipe.cmd("HMGET").arg(&key);
                for i in from..n.min(from + STATUS_SLICE) {
                    cmd.arg(format!("s{i}"));
                }
            }
            let slices: Vec<Vec<Option<String>>> = pipe.query_async(&mut self.conn()).await?;
            states.extend(slices.into_iter().flatten());
        }
        if states.len() != n {
            return Err(corrupt(id, "node states"));
        }
        let mut pair_of = Vec::with_capacity(n);
        for i in 0..n {
            let pair = ai
                .get(i * width..(i + 1) * width)
                .and_then(|x| x.parse::<usize>().ok())
                .and_then(|x| pairs.get(x))
                .ok_or_else(|| corrupt(id, "ai"))?;
            pair_of.push(pair);
        }
        let started: Vec<usize> = (0..n)
            .filter(|&i| states[i].as_deref() == Some("q"))
            .collect();
        let taken = self
            .taken(id, &key, &nonce, &started, &workers, |i| {
                pair_of[i].1.as_str()
            })
            .await?;
        let stopped = matches!(state, WorkflowState::Failed | WorkflowState::Cancelled);
        let mut nodes = Vec::with_capacity(n);
        for (i, s) in states.iter().enumerate() {
            let state = match (s.as_deref(), stopped) {
                (Some("q"), _) if taken.contains(&i) => NodeState::Running,
                // Queued tasks of a stopped workflow are skipped (fetch drops them).
                (None | Some("q"), true) | (Some("k"), _) => NodeState::Skipped,
                (None, false) => NodeState::Waiting,
                (Some("q"), false) => NodeState::Queued,
                (Some("d"), _) => NodeState::Done,
                (Some("f"), _) => NodeState::Failed,
                _ => return Err(corrupt(id, "node state")),
            };
            nodes.push(NodeStatus {
                actor: pair_of[i].0.clone(),
                state,
            });
        }
        Ok(WorkflowStatus {
            id: id.to_owned(),
            state,
            nodes,
            failure: fail.map(|f| failure(id, &f)).transpose()?,
        })
    }

    /// Which of the `started` nodes of workflow `id` (hash `key`) a worker took and has not
    /// settled: their current message (`m<i>`, else the first, `<i>:<nonce>@<id>`) is in
    /// the acks set of its queue (`queue_of(i)`) of one of the `workers` (those with a
    /// heartbeat). Two pipelined round trips: the sizes of those acks sets and the current
    /// receipts, then each non-empty set read whole (`SMEMBERS`) if it is smaller than the
    /// number of started nodes on its queue, else asked about them (`SMISMEMBER`); so the
    /// cost is at most the started nodes or the messages in flight, whichever is smaller,
    /// per worker.
    async fn taken<'q>(
        &self,
        id: &str,
        key: &str,
        nonce: &str,
        started: &[usize],
        workers: &[String],
        queue_of: impl Fn(usize) -> &'q str,
    ) -> Result<HashSet<usize>> {
        let mut taken = HashSet::new();
        if started.is_empty() || workers.is_empty() {
            return Ok(taken);
        }
        // Started nodes by queue, in a stable order.
        let mut queues: Vec<&str> = Vec::new();
        let mut nodes_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in started {
            let q = queue_of(i);
            nodes_of
                .entry(q)
                .or_insert_with(|| {
                    queues.push(q);
                    Vec::new()
                })
                .push(i);
        }
        let acks = |w: &str, q: &str| format!("{}:__acks__.{w}.{q}", self.inner.ns);
        let mut pipe = redis::pipe();
        for q in &queues {
            for w in workers {
                pipe.cmd("SCARD").arg(acks(w, q));
            }
        }
        for chunk in started.chunks(STATUS_SLICE) {
            let cmd = pipe.cmd("HMGET").arg(key);
            for i in chunk {
                cmd.arg(format!("m{i}"));
            }
        }
        let mut replies: Vec<redis::Value> = pipe.query_async(&mut self.conn()).await?;
        let rest = replies.split_off(queues.len() * workers.len());
        let cards: Vec<usize> = replies
            .into_iter()
            .map(parse_reply)
            .collect::<Result<_>>()?;
        if cards.iter().all(|&c| c == 0) {
            return Ok(taken);
        }
        let mut receipts: HashMap<usize, String> = HashMap::with_capacity(started.len());
        let mut at = started.iter();
        for reply in rest {
            let ms: Vec<Option<String>> = parse_reply(reply)?;
            for m in ms {
                let i = *at.next().ok_or_else(|| corrupt(id, "node receipts"))?;
                receipts.insert(i, m.unwrap_or_else(|| format!("{i}:{nonce}@{id}")));
            }
        }
        if receipts.len() != started.len() {
            return Err(corrupt(id, "node receipts"));
        }
        // Each non-empty acks set: read whole, or asked about the started nodes of its queue.
        enum Ask<'a> {
            Members(&'a str),
            Nodes(&'a [usize]),
        }
        let mut pipe = redis::pipe();
        let mut asked = Vec::new();
        for (x, q) in queues.iter().enumerate() {
            let nodes = &nodes_of[q];
            for (y, w) in workers.iter().enumerate() {
                let card = cards[x * workers.len() + y];
                if card == 0 {
                    continue;
                }
                if card <= nodes.len() {
                    pipe.cmd("SMEMBERS").arg(acks(w, q));
                    asked.push(Ask::Members(q));
                } else {
                    for chunk in nodes.chunks(STATUS_SLICE) {
                        let cmd = pipe.cmd("SMISMEMBER").arg(acks(w, q));
                        for i in chunk {
                            cmd.arg(&receipts[i]);
                        }
                        asked.push(Ask::Nodes(chunk));
                    }
                }
            }
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn()).await?;
        let mut by_receipt: HashMap<(&str, &str), usize> = HashMap::new();
        for (ask, reply) in asked.iter().zip(replies) {
            match ask {
                Ask::Members(q) => {
                    if by_receipt.is_empty() {
                        for (&i, r) in &receipts {
                            by_receipt.insert((queue_of(i), r.as_str()), i);
                        }
                    }
                    let members: Vec<String> = parse_reply(reply)?;
                    for m in &members {
                        if let Some(&i) = by_receipt.get(&(*q, m.as_str())) {
                            taken.insert(i);
                        }
                    }
                }
                Ask::Nodes(nodes) => {
                    let answer: Vec<u8> = parse_reply(reply)?;
                    for (&i, member) in nodes.iter().zip(answer) {
                        if member == 1 {
                            taken.insert(i);
                        }
                    }
                }
            }
        }
        Ok(taken)
    }
}

/// One reply of a pipeline of mixed commands, as `T`.
fn parse_reply<T: redis::FromRedisValue>(v: redis::Value) -> Result<T> {
    if let redis::Value::ServerError(e) = &v {
        return Err(Error::Broker(format!("Redis: {e:?}")));
    }
    redis::from_redis_value(v)
        .map_err(|e| Error::Broker(format!("unexpected reply from Redis: {e}")))
}

/// Refuses a workflow hash of another layout than [`LAYOUT`] (field `v`).
fn check_layout(id: &str, v: Option<&str>) -> Result<()> {
    if v == Some(LAYOUT) {
        return Ok(());
    }
    let found = v.map_or_else(|| "v1 (no version field)".to_owned(), |v| format!("v{v}"));
    Err(Error::Broker(format!(
        "workflow {id}: its state in Redis has layout {found}, which this version of \
         workflow-runtime cannot read (it reads v{LAYOUT}); finish it with the version that \
         started it"
    )))
}

fn corrupt(id: &str, what: &str) -> Error {
    Error::Broker(format!("workflow {id}: corrupt state in Redis ({what})"))
}

fn failure(id: &str, fail: &str) -> Result<WorkflowFailure> {
    let v: serde_json::Value = serde_json::from_str(fail).map_err(|_| corrupt(id, "fail"))?;
    Ok(WorkflowFailure {
        node: v["node"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        actor: v["actor"].as_str().unwrap_or_default().to_owned(),
        error: v["error"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Runs `f` again after a transient error (a lost connection, a timeout, a restarting
/// server), [`SUBMIT_ATTEMPTS`] times at most; for idempotent steps only.
async fn retry_transient<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut pause = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if e.is_transient() && attempt < SUBMIT_ATTEMPTS => {
                warn!(error = %e, attempt, "a request to Redis failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 4;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// The receipt of a workflow node's next message (a retry, or a delayed message moved to its
/// queue): the old receipt's node and nonce, and a new unique part.
fn retry_receipt(old: &str, w: &WorkflowRef) -> String {
    let uniq = uuid::Uuid::new_v4().simple();
    let node = w.node.to_string();
    let head = old
        .rsplit_once('@')
        .filter(|(_, id)| *id == w.id)
        .and_then(|(head, _)| head.split('.').next())
        .filter(|head| head.split(':').next() == Some(node.as_str()));
    match head {
        Some(head) => format!("{head}.{uniq}@{}", w.id),
        None => format!("{node}.{uniq}@{}", w.id),
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The message as enqueued: on `X.DQ` with `eta` if delayed, with its receipt in
/// `options.redis_message_id`. Returns the exact queue and the payload.
fn prepare(mut message: Message, delay: Option<Duration>, receipt: &str) -> (String, Vec<u8>) {
    if let Some(d) = delay.filter(|d| !d.is_zero()) {
        message.queue_name = dq_name(&message.queue_name);
        let eta = now_millis().saturating_add(millis(d));
        message.options.insert("eta".into(), eta.into());
    }
    message
        .options
        .insert("redis_message_id".into(), receipt.into());
    let payload = message.encode();
    (message.queue_name, payload)
}

impl Broker for RedisBroker {
    fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if !plan::valid_target_queue(&message.queue_name) {
                return Err(Error::InvalidQueueName(message.queue_name));
            }
            let receipt = uuid::Uuid::new_v4().to_string();
            let (queue, payload) = prepare(message, delay, &receipt);
            scripts::ENQUEUE
                .prepare_invoke()
                .arg(&self.inner.ns)
                .arg(&queue)
                .arg(&receipt)
                .arg(payload)
                .invoke_async::<i64>(&mut self.conn())
                .await?;
            self.wake(&queue);
            Ok(())
        })
    }

    fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(async move {
            if !plan::valid_target_queue(queue) {
                return Err(Error::InvalidQueueName(queue.to_owned()));
            }
            if max == 0 {
                return Ok(Vec::new());
            }
            let _gate = self.inner.fetch_gate.read().await;
            let waker = self.waker(queue);
            let generation = waker.generation.load(Ordering::Acquire);
            let beat = self.beat_due();
            let now = now_millis();
            let flat: Vec<Vec<u8>> = scripts::FETCH
                .prepare_invoke()
                .arg(&self.inner.ns)
                .arg(now)
                .arg(&self.inner.worker_id)
                .arg(queue)
                .arg(max.min(MAX_FETCH))
                .arg(if beat { "1" } else { "0" })
                .invoke_async(&mut self.conn())
                .await
                .inspect_err(|_| self.inner.suspect.store(true, Ordering::Release))?;
            if beat {
                self.inner.last_beat.fetch_max(now, Ordering::AcqRel);
            }
            // Fewer than asked: the queue was drained as of `generation`.
            if flat.len() / 2 < max.min(MAX_FETCH) {
                waker.empty_at.store(generation, Ordering::Release);
            }
            if flat.is_empty() {
                return Ok(Vec::new());
            }
            let name: Arc<str> = Arc::from(queue);
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(receipt), Some(payload)) = (it.next(), it.next()) {
                let receipt = String::from_utf8_lossy(&receipt).into_owned();
                out.push(Delivery {
                    queue: name.clone(),
                    receipt,
                    payload,
                });
            }
            let mut held = lock(&self.inner.held);
            let mine = held.entry(queue.to_owned()).or_default();
            mine.extend(out.iter().map(|d| d.receipt.clone()));
            Ok(out)
        })
    }

    fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(self.settle_batch(batch))
    }

    fn settle_and_take<'a>(
        &'a self,
        batch: &'a [Settlement],
        room: &'a [Room],
    ) -> BoxFuture<'a, Result<Settled>> {
        Box::pin(self.settle_take(batch, room))
    }

    fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>> {
        Box::pin(async move {
            if !is_valid_queue_name(queue) {
                return Err(Error::InvalidQueueName(queue.to_owned()));
            }
            let (msgs, dmsgs, fq, fdq, dead): (usize, usize, usize, usize, usize) = scripts::STATS
                .prepare_invoke()
                .arg(&self.inner.ns)
                .arg(q_name(queue))
                .invoke_async(&mut self.conn())
                .await?;
            Ok(QueueStats {
                ready: msgs.saturating_sub(fq),
                delayed: dmsgs.saturating_sub(fdq),
                in_flight: fq + fdq,
                dead,
            })
        })
    }

    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let wakers: Vec<Arc<Waker>> = queues.iter().map(|q| self.waker(q)).collect();
            let mut waits: Vec<_> = wakers
                .iter()
                .map(|w| Box::pin(w.notify.notified()))
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            // Something was enqueued here since the last fetch found the queue empty.
            if wakers
                .iter()
                .any(|w| w.generation.load(Ordering::Acquire) != w.empty_at.load(Ordering::Acquire))
            {
                return;
            }
            let any = std::future::poll_fn(|cx| {
                for w in &mut waits {
                    if w.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                }
                Poll::Pending
            });
            let _ = tokio::time::timeout(timeout, any).await;
        })
    }

    fn heartbeat<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if self.inner.suspect.swap(false, Ordering::AcqRel) {
                if let Err(e) = self.sweep_orphans(queues).await {
                    self.inner.suspect.store(true, Ordering::Release);
                    return Err(e);
                }
            }
            let (mut forget, mut offset) = {
                let mut d = lock(&self.inner.dead);
                (std::mem::take(&mut d.forget), d.offset)
            };
            let mut claimed = Vec::new();
            for _ in 0..EXPIRE_ROUNDS {
                let now = now_millis();
                let mut inv = scripts::HEARTBEAT.prepare_invoke();
                inv.arg(&self.inner.ns)
                    .arg(now)
                    .arg(&self.inner.worker_id)
                    .arg(millis(self.inner.heartbeat_timeout))
                    .arg(millis(self.inner.dead_message_ttl))
                    .arg(offset)
                    .arg(millis(self.heartbeat_interval()))
                    .arg(forget.len());
                for w in &forget {
                    inv.arg(w);
                }
                for q in queues {
                    inv.arg(q);
                }
                type Beat = (Vec<String>, u64, Vec<String>, u64, u8, Vec<String>);
                let (dead, recovered, woke, next, more, due): Beat =
                    inv.invoke_async(&mut self.conn()).await?;
                claimed.extend(due);
                self.inner.last_beat.fetch_max(now, Ordering::AcqRel);
                if recovered > 0 {
                    warn!(messages = recovered, workers = ?dead, "gave back the messages of dead workers");
                }
                self.woke(woke);
                forget.clear();
                offset = next;
                {
                    let mut d = lock(&self.inner.dead);
                    d.offset = next;
                    let at = Instant::now();
                    for w in dead {
                        d.known.entry(w).or_insert((at, at)).1 = at;
                    }
                }
                if more == 0 {
                    break;
                }
            }
            // Workflows whose start sets were left to start and made no progress for a
            // heartbeat interval (the process that was starting them died, say): one slice
            // each. A workflow that fails here stays in the index and comes back later.
            for id in claimed {
                if let Err(e) = self.resume_once(&id).await {
                    warn!(workflow = %id, error = %e, "starting more tasks of a workflow failed; a later heartbeat tries again");
                }
            }
            self.scan_dead().await
        })
    }

    fn heartbeat_interval(&self) -> Duration {
        (self.inner.heartbeat_timeout / 6).min(Duration::from_secs(10))
    }

    fn submit_workflow(&self, plan: Plan) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.submit(plan))
    }

    fn workflow_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<WorkflowStatus>> {
        Box::pin(self.status(id))
    }

    fn workflow_state<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(WorkflowState, Option<WorkflowFailure>)>> {
        Box::pin(self.state(id))
    }

    fn cancel_workflow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if !plan::valid_workflow_id(id) {
                return Err(Error::UnknownWorkflow(id.to_owned()));
            }
            let (r, from): (i64, i64) = scripts::CANCEL
                .prepare_invoke()
                .arg(&self.inner.ns)
                .arg(now_millis())
                .arg(id)
                .invoke_async(&mut self.conn())
                .await?;
            match r {
                -1 => Err(Error::UnknownWorkflow(id.to_owned())),
                0 => Ok(false),
                _ => {
                    // A big workflow: skip the rest of its queued tasks, a slice per call. It
                    // is cancelled whatever happens here: fetch drops what is left.
                    if let Err(e) = self.sweep_all(id, from).await {
                        warn!(workflow = %id, error = %e, "skipping the queued tasks of a cancelled workflow failed; they are dropped when fetched");
                    }
                    Ok(true)
                }
            }
        })
    }
}
