//! The [`Worker`]: fetches messages, runs their actors, retries failures and advances
//! workflows.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::broker::{Broker, Delivery, Room, Settled, Settlement};
use crate::engine::{dq_name, is_valid_queue_name, now_millis, q_name, Message};
use crate::error::{Error, Result};
use registry::{panic_message, ActorEntry, Registry, TaskError};
use retry::{RetryPolicy, DEFAULT_TIME_LIMIT};

pub mod registry;
pub mod retry;

/// Runs actors for the messages on a broker's queues.
///
/// ```no_run
/// # async fn run() -> workflow_runtime::Result<()> {
/// use workflow_runtime::{MemoryBroker, Worker};
///
/// let broker = MemoryBroker::new();
/// Worker::new(broker)
///     .concurrency(32)
///     .run_until(async { tokio::signal::ctrl_c().await.ok(); })
///     .await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    broker: Arc<dyn Broker>,
    registry: Option<Registry>,
    queues: Option<Vec<String>>,
    concurrency: usize,
    prefetch: Option<usize>,
    delay_prefetch: Option<usize>,
    grace: Duration,
    max_poll_interval: Duration,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queues", &self.queues)
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker on `broker` for every actor linked into the binary, with 8 tasks at a time.
    pub fn new(broker: impl Broker) -> Self {
        Worker {
            broker: Arc::new(broker),
            registry: None,
            queues: None,
            concurrency: 8,
            prefetch: None,
            delay_prefetch: None,
            grace: Duration::from_secs(30),
            max_poll_interval: Duration::from_secs(1),
        }
    }

    /// How many tasks run at once (default 8).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Consumes only these queues (default: the queues of all registered actors).
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = Some(queues.into_iter().map(Into::into).collect());
        self
    }

    /// How many messages of one queue this worker holds at most, running or waiting to run
    /// (default: twice the concurrency).
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n.max(1));
        self
    }

    /// How many delayed messages (and retries waiting for their backoff) of one queue this
    /// worker holds at most, until they are due (default: 1000 per unit of concurrency, at most
    /// 65535, as dramatiq). When that many wait for later times, messages delayed less wait
    /// behind them on the broker.
    pub fn delay_prefetch(mut self, n: usize) -> Self {
        self.delay_prefetch = Some(n.max(1));
        self
    }

    /// How long running tasks may take to finish after shutdown starts (default 30 s); tasks
    /// still running then are stopped and their messages given back.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The longest pause between polls of an idle queue (default 1 s). Brokers that can tell
    /// when work arrives wake the worker sooner.
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Runs these actors instead of every linked one.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Runs until `shutdown` resolves, then stops fetching, gives back messages not started,
    /// lets running tasks finish within the grace period, and returns.
    ///
    /// During the grace period a Ctrl-C (SIGINT) or SIGTERM stops at once; the messages of
    /// tasks still running are given back.
    ///
    /// Fails at once if two linked actors share a name, or if a queue name is invalid.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let registry = match self.registry {
            Some(r) => r,
            None => Registry::linked()?,
        };
        let queues = self.queues.clone().unwrap_or_else(|| registry.queues());
        for q in &queues {
            if !is_valid_queue_name(q) || q_name(q) != q {
                return Err(Error::InvalidQueueName(q.clone()));
            }
        }
        let prefetch = self.prefetch.unwrap_or(self.concurrency * 2);
        let delay_prefetch = self
            .delay_prefetch
            .unwrap_or((self.concurrency * 1000).min(65535));
        let shared = Arc::new(Shared {
            broker: self.broker.clone(),
            registry,
            permits: Arc::new(Semaphore::new(self.concurrency)),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            running: Mutex::new(HashMap::new()),
            max_poll_interval: self.max_poll_interval,
        });
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        let mut all_queues = Vec::new();
        let mut consumers = Vec::new();
        let mut slots = Vec::new();
        for q in &queues {
            for (name, limit) in [(q.clone(), prefetch), (dq_name(q), delay_prefetch)] {
                all_queues.push(name.clone());
                let queue: Arc<str> = Arc::from(name.as_str());
                let outstanding = Arc::new(Outstanding::default());
                // Ready queues get the messages that settling takes for them (see `flush`).
                let inbox = if name == *q {
                    let (tx, rx) = mpsc::unbounded_channel();
                    slots.push(Slot {
                        queue: queue.clone(),
                        limit,
                        outstanding: outstanding.clone(),
                        inbox: tx,
                    });
                    Some(rx)
                } else {
                    None
                };
                let c = Consumer {
                    shared: shared.clone(),
                    queue,
                    names: vec![name],
                    limit,
                    outstanding,
                    settle: settle_tx.clone(),
                    inbox,
                };
                consumers.push(tokio::spawn(c.run()));
            }
        }
        let flusher = tokio::spawn(flush(
            self.broker.clone(),
            settle_rx,
            slots,
            shared.stop.clone(),
        ));
        // Heartbeats go on until everything is settled: a worker that falls silent while it
        // still finishes tasks would have its messages recovered and run twice by others.
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = {
            let shared = shared.clone();
            let stop = heartbeat_stop.clone();
            let queues = all_queues.clone();
            tokio::spawn(async move {
                let every = shared.broker.heartbeat_interval();
                loop {
                    if let Err(e) = shared.broker.heartbeat(&queues).await {
                        warn!(error = %e, "heartbeat failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            })
        };
        info!(queues = ?queues, concurrency = self.concurrency, "worker started");

        shutdown.await;
        info!("worker stopping: no new messages; waiting for running tasks");
        shared.stop.cancel();
        for c in consumers {
            let _ = c.await;
        }
        shared.tracker.close();
        let in_time = tokio::select! {
            _ = shared.tracker.wait() => true,
            _ = tokio::time::sleep(self.grace) => false,
            _ = second_signal() => false,
        };
        if !in_time {
            let running: Vec<_> = shared
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            warn!(
                tasks = running.len(),
                "stopping tasks still running; their messages are given back"
            );
            for ((queue, receipt), abort) in running {
                abort.abort();
                let _ = settle_tx.send(Settlement::Requeue { queue, receipt });
            }
            shared.tracker.wait().await;
        }
        drop(settle_tx);
        // Settlements still waiting (e.g. while Redis is unreachable) get one more grace
        // period; messages whose settlement is lost are delivered again later.
        let mut flusher = flusher;
        if tokio::time::timeout(self.grace, &mut flusher)
            .await
            .is_err()
        {
            error!("could not settle every finished message in time; those will run again");
            flusher.abort();
        }
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        info!("worker stopped");
        Ok(())
    }
}

async fn second_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM: the usual `shutdown` for
/// [`Worker::run_until`].
pub async fn shutdown_signal() {
    second_signal().await
}

struct Shared {
    broker: Arc<dyn Broker>,
    registry: Registry,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    tracker: TaskTracker,
    running: Mutex<HashMap<(Arc<str>, String), AbortHandle>>,
    max_poll_interval: Duration,
}

/// Messages of one consumer that are fetched and not yet settled.
#[derive(Default)]
struct Outstanding {
    /// Held messages, and room claimed for a fetch or a settlement's take in flight.
    count: AtomicUsize,
    freed: Notify,
    /// The consumer found its queue drained and waits: settlements may take for it.
    idle: AtomicBool,
}

impl Outstanding {
    fn release(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Claims all the room left below `limit`; returns how much. The consumer's fetches and the
    /// flusher's takes both claim their room this way, so together they never hold more than
    /// `limit`.
    fn reserve(&self, limit: usize) -> usize {
        let mut held = self.count.load(Ordering::Acquire);
        while held < limit {
            match self
                .count
                .compare_exchange_weak(held, limit, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return limit - held,
                Err(now) => held = now,
            }
        }
        0
    }

    /// Gives back `n` of a reservation that was not used.
    fn unreserve(&self, n: usize) {
        if n > 0 {
            self.count.fetch_sub(n, Ordering::AcqRel);
            self.freed.notify_one();
        }
    }
}

/// A ready queue's consumer, as the settlement flusher sees it: settling may take messages
/// for it, within the room it has.
struct Slot {
    queue: Arc<str>,
    limit: usize,
    outstanding: Arc<Outstanding>,
    inbox: mpsc::UnboundedSender<Vec<Delivery>>,
}

struct Consumer {
    shared: Arc<Shared>,
    queue: Arc<str>,
    names: Vec<String>,
    limit: usize,
    outstanding: Arc<Outstanding>,
    settle: mpsc::UnboundedSender<Settlement>,
    /// Messages taken for this consumer by settlements (counted in `outstanding` already).
    inbox: Option<mpsc::UnboundedReceiver<Vec<Delivery>>>,
}

/// The next batch of an inbox; never, without one.
async fn next_taken(
    inbox: &mut Option<mpsc::UnboundedReceiver<Vec<Delivery>>>,
) -> Option<Vec<Delivery>> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Consumer {
    async fn run(mut self) {
        let stop = self.shared.stop.clone();
        let mut inbox = self.inbox.take();
        let mut misses: u32 = 0;
        // While the queue is believed empty: wait for a wake-up, or until then, before fetching.
        let mut idle_until: Option<Instant> = None;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let held = self.outstanding.count.load(Ordering::Acquire);
            if held >= self.limit {
                tokio::select! {
                    _ = self.outstanding.freed.notified() => {}
                    Some(taken) = next_taken(&mut inbox) => {
                        if !self.dispatch_all(taken).await {
                            break;
                        }
                    }
                    _ = stop.cancelled() => break,
                }
                continue;
            }
            if let Some(until) = idle_until {
                self.outstanding.idle.store(true, Ordering::Release);
                let left = until.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    tokio::select! {
                        _ = self.shared.broker.wait_for_work(&self.names, left) => {}
                        Some(taken) = next_taken(&mut inbox) => {
                            if !self.dispatch_all(taken).await {
                                break;
                            }
                            // The settlement that took these saw the queue: if it left
                            // messages there, it woke this consumer; if not, the next poll can
                            // wait as long again (a poll would hold the room that settlements
                            // take into).
                            idle_until = Some(
                                Instant::now() + poll_pause(misses, self.shared.max_poll_interval),
                            );
                            continue;
                        }
                        _ = stop.cancelled() => break,
                    }
                }
                // Woken or due to poll: settlements stop taking this consumer's room before it
                // needs it for its own fetch.
                self.outstanding.idle.store(false, Ordering::Release);
                idle_until = None;
                continue;
            }
            // Not idle any more: settlements stop taking for this consumer, which claims the
            // room for its fetch (unless a settlement in flight still holds it).
            self.outstanding.idle.store(false, Ordering::Release);
            let room = self.outstanding.reserve(self.limit);
            if room == 0 {
                continue;
            }
            // A fetch is not abandoned half-way when the worker stops: the broker may already
            // have handed out its messages; they are given back below instead.
            let fetched = self.shared.broker.fetch(&self.queue, room).await;
            // Each message fetched is held until released once; what was not used of the room
            // is given back (a broker that returned more than asked is held too).
            let got = fetched.as_ref().map_or(0, Vec::len);
            if got < room {
                self.outstanding
                    .count
                    .fetch_sub(room - got, Ordering::AcqRel);
            } else {
                self.outstanding
                    .count
                    .fetch_add(got - room, Ordering::AcqRel);
            }
            match fetched {
                Err(e) => {
                    warn!(queue = %self.queue, error = %e, "fetch failed; retrying");
                    misses = misses.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(poll_pause(misses, self.shared.max_poll_interval)) => {}
                        _ = stop.cancelled() => break,
                    }
                }
                Ok(batch) if batch.is_empty() => {
                    misses = misses.saturating_add(1);
                    idle_until =
                        Some(Instant::now() + poll_pause(misses, self.shared.max_poll_interval));
                    self.outstanding.idle.store(true, Ordering::Release);
                }
                Ok(batch) => {
                    misses = 0;
                    // The queue had fewer messages than asked for: polling again at once
                    // would most likely find it empty. Wait for a wake-up or a short pause.
                    if batch.len() < room {
                        idle_until =
                            Some(Instant::now() + poll_pause(0, self.shared.max_poll_interval));
                        // Before the tasks start: their settlements may take what comes next.
                        self.outstanding.idle.store(true, Ordering::Release);
                    }
                    if !self.dispatch_all(batch).await {
                        break;
                    }
                }
            }
        }
        // Messages taken for this consumer that it will not run now go back (`recv` after
        // `close` also waits for a send in progress).
        self.outstanding.idle.store(false, Ordering::Release);
        if let Some(mut inbox) = inbox {
            inbox.close();
            while let Some(taken) = inbox.recv().await {
                for d in taken {
                    self.give_back(d);
                }
            }
        }
    }

    /// Starts deliveries (counted in `outstanding` already); `false` if the worker is stopping
    /// (those not started were given back).
    async fn dispatch_all(&self, batch: Vec<Delivery>) -> bool {
        let mut batch = batch.into_iter();
        while let Some(d) = batch.next() {
            if !self.dispatch(d).await {
                for d in batch.by_ref() {
                    self.give_back(d);
                }
                return false;
            }
        }
        true
    }

    fn give_back(&self, d: Delivery) {
        let _ = self.settle.send(Settlement::Requeue {
            queue: d.queue,
            receipt: d.receipt,
        });
        self.outstanding.release();
    }

    fn settle_now(&self, s: Settlement) {
        let _ = self.settle.send(s);
        self.outstanding.release();
    }

    /// Starts one delivery; `false` if the worker is stopping (the delivery was given back).
    async fn dispatch(&self, d: Delivery) -> bool {
        let message = match Message::decode(&d.payload) {
            Ok(m) => m,
            Err(e) => {
                error!(queue = %d.queue, receipt = %d.receipt, error = %e, "undecodable message; dead-lettering it");
                self.settle_now(Settlement::DeadLetter {
                    queue: d.queue,
                    receipt: d.receipt,
                    reason: e.to_string(),
                    workflow: None,
                });
                return true;
            }
        };
        let is_delay_queue = d.queue.ends_with(".DQ");
        if is_delay_queue || message.eta().is_some() {
            self.hold_delayed(d, message);
            return true;
        }
        // Stopping wins over a permit that frees at the same moment: no task starts once
        // shutdown has begun.
        let permit = tokio::select! {
            biased;
            _ = self.shared.stop.cancelled() => None,
            p = self.shared.permits.clone().acquire_owned() => p.ok(),
        };
        let Some(permit) = permit.filter(|_| !self.shared.stop.is_cancelled()) else {
            self.give_back(d);
            return false;
        };
        let shared = self.shared.clone();
        let settle = self.settle.clone();
        let outstanding = self.outstanding.clone();
        let key = (d.queue.clone(), d.receipt.clone());
        // Registered before the task can finish and unregister itself.
        let mut running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let task = self.shared.tracker.spawn(async move {
            let s = execute(&shared, d, message).await;
            shared
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(s.queue().clone(), s.receipt().to_owned()));
            let _ = settle.send(s);
            outstanding.release();
            drop(permit);
        });
        running.insert(key, task.abort_handle());
        true
    }

    /// Keeps a delayed message until its `eta`, then moves it to its queue.
    fn hold_delayed(&self, d: Delivery, mut message: Message) {
        let eta = message.eta().unwrap_or(0);
        let wait = Duration::from_millis(eta.saturating_sub(now_millis()));
        let stop = self.shared.stop.clone();
        let settle = self.settle.clone();
        let outstanding = self.outstanding.clone();
        self.shared.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {
                    message.options.remove("eta");
                    message.queue_name = q_name(&message.queue_name).to_owned();
                    let _ = settle.send(Settlement::Replace { queue: d.queue, receipt: d.receipt, message, delay: None });
                }
                _ = stop.cancelled() => {
                    let _ = settle.send(Settlement::Requeue { queue: d.queue, receipt: d.receipt });
                }
            }
            outstanding.release();
        });
    }
}

/// dramatiq's idle backoff: 5 ms doubling per empty poll, capped.
fn poll_pause(misses: u32, cap: Duration) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1u64 << misses.min(20))).min(cap)
}

/// Runs one message and says how to settle it.
async fn execute(shared: &Shared, d: Delivery, message: Message) -> Settlement {
    let workflow = message.workflow();
    let span = tracing::info_span!(
        "task",
        actor = %message.actor_name,
        message_id = %message.message_id,
        queue = %d.queue,
    );
    let dead = |reason: String| {
        error!(parent: &span, reason = %reason, "dead-lettering message");
        Settlement::DeadLetter {
            queue: d.queue.clone(),
            receipt: d.receipt.clone(),
            reason,
            workflow: workflow.clone(),
        }
    };
    let actor: &ActorEntry = match shared.registry.get(&message.actor_name) {
        Some(a) => a,
        None => {
            return dead(format!(
                "unknown actor `{}`: no actor of that name is linked into this worker",
                message.actor_name
            ))
        }
    };
    if let Some(max_age) = message
        .option_millis("max_age")
        .map(Duration::from_millis)
        .or(actor.options.max_age)
    {
        let age = Duration::from_millis(now_millis().saturating_sub(message.timestamp_millis()));
        if age >= max_age {
            return dead(format!(
                "message is {age:?} old, older than max_age {max_age:?}"
            ));
        }
    }
    let time_limit = message
        .option_millis("time_limit")
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .or(actor.options.time_limit)
        .unwrap_or(DEFAULT_TIME_LIMIT);
    let outcome = async {
        debug!("running");
        let (args, kwargs) = (message.args.clone(), message.kwargs.clone());
        // A `Deserialize` impl of an argument may panic: that is a bad message, not a crash.
        let fut = std::panic::catch_unwind(AssertUnwindSafe(|| (actor.handler)(args, kwargs)))
            .map_err(|panic| {
            TaskError::permanent(format!(
                "decoding the arguments panicked: {}",
                panic_message(panic.as_ref())
            ))
        })??;
        match tokio::time::timeout(time_limit, AssertUnwindSafe(fut).catch_unwind()).await {
            Err(_) => Err(TaskError::new(format!(
                "time limit of {time_limit:?} exceeded"
            ))),
            Ok(Err(panic)) => Err(TaskError::new(format!(
                "panicked: {}",
                panic_message(panic.as_ref())
            ))),
            Ok(Ok(r)) => r,
        }
    }
    .instrument(span.clone())
    .await;
    match outcome {
        Ok(()) => {
            debug!(parent: &span, "done");
            match workflow {
                Some(workflow) => Settlement::Complete {
                    queue: d.queue,
                    receipt: d.receipt,
                    workflow,
                },
                None => Settlement::Ack {
                    queue: d.queue,
                    receipt: d.receipt,
                },
            }
        }
        Err(e) if e.retryable => {
            let retries = message
                .options
                .get("retries")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let policy = RetryPolicy::for_message(&message, &actor.options);
            match policy.next_delay(retries.min(u64::from(u32::MAX)) as u32) {
                None => dead(format!(
                    "{} (retries exhausted after {retries} retries)",
                    e.message
                )),
                Some(delay) => {
                    warn!(parent: &span, error = %e.message, retry = retries + 1, ?delay, "attempt failed; retrying");
                    let mut retry = message;
                    retry
                        .options
                        .insert("retries".into(), Value::from(retries + 1));
                    retry
                        .options
                        .insert("traceback".into(), Value::from(e.message));
                    retry
                        .options
                        .insert("requeue_timestamp".into(), Value::from(now_millis()));
                    retry.options.remove("eta");
                    retry.queue_name = q_name(&retry.queue_name).to_owned();
                    Settlement::Replace {
                        queue: d.queue,
                        receipt: d.receipt,
                        message: retry,
                        delay: Some(delay),
                    }
                }
            }
        }
        Err(e) => dead(e.message),
    }
}

/// Sends settlements to the broker in batches: everything that piled up while the previous
/// batch was in flight goes in the next one, so an idle worker settles at once.
///
/// A batch that may enqueue ready messages (completions, retries) offers the broker the room
/// that the ready queues' idle consumers (those that found their queue drained) have,
/// reserved for the call: the broker may hand back, in the same request, messages such a
/// consumer would fetch next (a chain's next step, say), which go to its inbox.
async fn flush(
    broker: Arc<dyn Broker>,
    mut rx: mpsc::UnboundedReceiver<Settlement>,
    slots: Vec<Slot>,
    stop: CancellationToken,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Messages taken for a consumer that had stopped: they go back with the next batch.
    let mut back: Vec<Settlement> = Vec::new();
    loop {
        if back.is_empty() {
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                break;
            }
        } else {
            batch.append(&mut back);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
        }
        let may_push = batch
            .iter()
            .any(|s| matches!(s, Settlement::Complete { .. } | Settlement::Replace { .. }));
        let mut rooms = Vec::new();
        let mut reserved = Vec::new();
        if may_push && !stop.is_cancelled() {
            // Only consumers waiting on a drained queue: one that is fetching gets its
            // messages itself, and must not find its room held by every settlement.
            for (i, slot) in slots.iter().enumerate() {
                if !slot.outstanding.idle.load(Ordering::Acquire) {
                    continue;
                }
                let n = slot.outstanding.reserve(slot.limit);
                if n > 0 {
                    rooms.push(Room {
                        queue: slot.queue.clone(),
                        max: n,
                    });
                    reserved.push((i, n));
                }
            }
        }
        let mut used = vec![0usize; slots.len()];
        match settle_until_done(&*broker, &batch, &rooms).await {
            Ok(settled) => {
                let mut by_slot: Vec<Vec<Delivery>> = slots.iter().map(|_| Vec::new()).collect();
                for d in settled.taken {
                    match reserved
                        .iter()
                        .find(|(i, n)| slots[*i].queue == d.queue && used[*i] < *n)
                    {
                        Some(&(i, _)) => {
                            used[i] += 1;
                            by_slot[i].push(d);
                        }
                        // More than the room offered: not ours to run.
                        None => back.push(Settlement::Requeue {
                            queue: d.queue,
                            receipt: d.receipt,
                        }),
                    }
                }
                for (i, taken) in by_slot.into_iter().enumerate() {
                    if taken.is_empty() {
                        continue;
                    }
                    if let Err(mpsc::error::SendError(taken)) = slots[i].inbox.send(taken) {
                        used[i] -= taken.len();
                        back.extend(taken.into_iter().map(|d| Settlement::Requeue {
                            queue: d.queue,
                            receipt: d.receipt,
                        }));
                    }
                }
            }
            Err(e) => {
                // Nothing was taken: the room goes back before the slow path below.
                for (i, n) in reserved.drain(..) {
                    slots[i].outstanding.unreserve(n);
                }
                // One settlement the broker keeps rejecting must not hold back the others.
                warn!(error = %e, messages = batch.len(), "settling a batch failed; settling one by one");
                for s in &batch {
                    if let Err(e) = settle_until_done(&*broker, std::slice::from_ref(s), &[]).await
                    {
                        error!(
                            error = %e,
                            queue = %s.queue(),
                            receipt = s.receipt(),
                            "the broker rejected a settlement; the message stays in flight and is \
                             delivered again once this worker is gone"
                        );
                    }
                }
            }
        }
        for (i, n) in reserved {
            slots[i].outstanding.unreserve(n - used[i]);
        }
        batch.clear();
    }
}

/// Settles `batch` (offering `rooms`), retrying for as long as the error is transient (a lost
/// connection, a restarting server); settling twice is harmless. Returns a permanent error.
async fn settle_until_done(
    broker: &dyn Broker,
    batch: &[Settlement],
    rooms: &[Room],
) -> Result<Settled> {
    let mut pause = Duration::from_millis(10);
    loop {
        match broker.settle_and_take(batch, rooms).await {
            Ok(settled) => return Ok(settled),
            Err(e) if e.is_transient() => {
                error!(error = %e, messages = batch.len(), "settling messages failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
