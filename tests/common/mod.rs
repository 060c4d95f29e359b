//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workflow::{Broker, Worker};

/// A worker running in the background until [`Running::stop`].
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<workflow::Result<()>>,
}

impl Running {
    /// Asks the worker to shut down and waits until it did.
    pub async fn stop(mut self) -> workflow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.expect("the worker task panicked")
    }
}

/// Starts `worker` in the background.
pub fn start(worker: Worker) -> Running {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        task,
    }
}

/// A worker on `broker` with a small poll interval.
pub fn worker(broker: impl Broker) -> Worker {
    Worker::new(broker).max_poll_interval(Duration::from_millis(50))
}

/// Waits until `cond` holds, polling, or panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
