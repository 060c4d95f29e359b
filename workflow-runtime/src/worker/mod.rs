//! The [`Worker`]: fetches messages, runs their actors, retries failures and advances
//! workflows.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::broker::{Broker, Settlement};
use crate::engine::{dq_name, is_valid_queue_name, q_name};
use crate::error::{Error, Result};
use consumer::Consumer;
use flush::flush;
use registry::Registry;
use shared::{Outstanding, Shared, Slot};

mod consumer;
mod execute;
mod flush;
pub mod registry;
pub mod retry;
mod shared;

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
    /// The worker installs no signal handler of its own: `shutdown` decides when to stop
    /// ([`shutdown_signal`] waits for Ctrl-C or SIGTERM). To also stop at once on a second
    /// signal during the grace period, use [`run_until_or_forced`](Self::run_until_or_forced).
    ///
    /// Fails at once if two linked actors share a name, or if a queue name is invalid.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        self.run_until_or_forced(shutdown, std::future::pending())
            .await
    }

    /// Like [`run_until`](Self::run_until), but stops at once when `force` resolves during the
    /// grace period: the messages of tasks still running are given back (they run again
    /// elsewhere). `force` is first polled when `shutdown` has resolved, so a second
    /// [`shutdown_signal`] waits for the next signal:
    ///
    /// ```no_run
    /// # async fn run() -> workflow_runtime::Result<()> {
    /// use workflow_runtime::worker::shutdown_signal;
    /// use workflow_runtime::{MemoryBroker, Worker};
    ///
    /// // The first Ctrl-C stops gracefully, a second one at once.
    /// Worker::new(MemoryBroker::new())
    ///     .run_until_or_forced(shutdown_signal(), shutdown_signal())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_until_or_forced(
        self,
        shutdown: impl Future<Output = ()> + Send,
        force: impl Future<Output = ()> + Send,
    ) -> Result<()> {
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
            _ = force => false,
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

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM: the usual `shutdown` for
/// [`Worker::run_until`].
pub async fn shutdown_signal() {
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
