//! A consumer: fetches the messages of one queue (or its delay queue) within its limit,
//! holds delayed ones until their eta, and dispatches each to a task.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, warn};

use super::execute::execute;
use super::shared::{Outstanding, Shared};
use crate::broker::{Broker, Delivery, Settlement};
use crate::engine::{now_millis, q_name, Message};

pub(super) struct Consumer {
    pub(super) shared: Arc<Shared>,
    pub(super) queue: Arc<str>,
    pub(super) names: Vec<String>,
    pub(super) limit: usize,
    pub(super) outstanding: Arc<Outstanding>,
    pub(super) settle: mpsc::UnboundedSender<Settlement>,
    /// Messages taken for this consumer by settlements (counted in `outstanding` already).
    pub(super) inbox: Option<mpsc::UnboundedReceiver<Vec<Delivery>>>,
}

/// The next batch of an inbox; never, without one.
pub(super) async fn next_taken(
    inbox: &mut Option<mpsc::UnboundedReceiver<Vec<Delivery>>>,
) -> Option<Vec<Delivery>> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Consumer {
    pub(super) async fn run(mut self) {
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
    pub(super) async fn dispatch_all(&self, batch: Vec<Delivery>) -> bool {
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

    pub(super) fn give_back(&self, d: Delivery) {
        let _ = self.settle.send(Settlement::Requeue {
            queue: d.queue,
            receipt: d.receipt,
        });
        self.outstanding.release();
    }

    pub(super) fn settle_now(&self, s: Settlement) {
        let _ = self.settle.send(s);
        self.outstanding.release();
    }

    /// Starts one delivery; `false` if the worker is stopping (the delivery was given back).
    pub(super) async fn dispatch(&self, d: Delivery) -> bool {
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
    pub(super) fn hold_delayed(&self, d: Delivery, mut message: Message) {
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
pub(super) fn poll_pause(misses: u32, cap: Duration) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1u64 << misses.min(20))).min(cap)
}
