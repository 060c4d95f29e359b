//! What the parts of a running worker share: the broker, the registry, the concurrency
//! permits, the stop signal and the tasks in flight; and the bookkeeping of fetched messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::registry::Registry;
use crate::broker::{Broker, Delivery};

pub(super) struct Shared {
    pub(super) broker: Arc<dyn Broker>,
    pub(super) registry: Registry,
    pub(super) permits: Arc<Semaphore>,
    pub(super) stop: CancellationToken,
    pub(super) tracker: TaskTracker,
    pub(super) running: Mutex<HashMap<(Arc<str>, String), AbortHandle>>,
    pub(super) max_poll_interval: Duration,
}

/// Messages of one consumer that are fetched and not yet settled.
#[derive(Default)]
pub(super) struct Outstanding {
    /// Held messages, and room claimed for a fetch or a settlement's take in flight.
    pub(super) count: AtomicUsize,
    pub(super) freed: Notify,
    /// The consumer found its queue drained and waits: settlements may take for it.
    pub(super) idle: AtomicBool,
}

impl Outstanding {
    pub(super) fn release(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Claims all the room left below `limit`; returns how much. The consumer's fetches and the
    /// flusher's takes both claim their room this way, so together they never hold more than
    /// `limit`.
    pub(super) fn reserve(&self, limit: usize) -> usize {
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
    pub(super) fn unreserve(&self, n: usize) {
        if n > 0 {
            self.count.fetch_sub(n, Ordering::AcqRel);
            self.freed.notify_one();
        }
    }
}

/// A ready queue's consumer, as the settlement flusher sees it: settling may take messages
/// for it, within the room it has.
pub(super) struct Slot {
    pub(super) queue: Arc<str>,
    pub(super) limit: usize,
    pub(super) outstanding: Arc<Outstanding>,
    pub(super) inbox: mpsc::UnboundedSender<Vec<Delivery>>,
}
