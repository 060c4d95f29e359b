//! [`MemoryBroker`]: the embedded broker, with no server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use super::{BoxFuture, Broker, Delivery, QueueStats, Settlement};
use crate::engine::{dq_name, now_millis, q_name, Message, WorkflowRef};
use crate::engine::{Effects, Plan, State, WorkflowStatus};
use crate::error::{Error, Result};

/// A broker that keeps everything in this process's memory.
///
/// It has the same semantics as the Redis broker (delay queues, dead letters, atomic workflow
/// steps) and is the default for examples and tests. Clones share the same queues.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> workflow_runtime::Result<()> {
/// use workflow_runtime::{Message, MemoryBroker, Broker};
///
/// let broker = MemoryBroker::new();
/// broker.enqueue(Message::new("default", "add", vec![1.into(), 2.into()]), None).await?;
/// assert_eq!(broker.queue_stats("default").await?.ready, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<St>,
    /// Signalled on every enqueue and settlement.
    changed: Notify,
}

#[derive(Default)]
struct St {
    queues: HashMap<String, Queue>,
    dead: HashMap<String, Vec<DeadLetter>>,
    workflows: HashMap<String, Wf>,
    next_receipt: u64,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<String>,
    msgs: HashMap<String, Stored>,
    in_flight: HashSet<String>,
}

struct Stored {
    payload: Vec<u8>,
    workflow: Option<WorkflowRef>,
}

struct Wf {
    state: State,
    /// Where each started node's current message is.
    receipts: HashMap<u32, (String, String)>,
    finished_at: Option<Instant>,
}

/// A message on a dead-letter queue.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The payload as it was stored.
    pub payload: Vec<u8>,
    /// Why it was dead-lettered.
    pub reason: String,
}

impl MemoryBroker {
    /// A new, empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the broker, so poisoning is ignored.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every queue is empty and no message is in flight, or fails with
    /// [`Error::Timeout`] after `timeout`.
    pub async fn join(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().is_idle() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Error::Timeout(timeout));
            }
        }
    }

    /// The messages on the dead-letter queue of `queue`, oldest first.
    pub fn dead_letters(&self, queue: &str) -> Vec<DeadLetter> {
        self.lock()
            .dead
            .get(q_name(queue))
            .cloned()
            .unwrap_or_default()
    }

    /// Puts raw bytes on a queue as if some other producer had written them (for tests of
    /// undecodable payloads).
    pub fn enqueue_raw(&self, queue: &str, payload: Vec<u8>) {
        let mut st = self.lock();
        let receipt = st.receipt();
        st.queue(queue).push(
            receipt,
            Stored {
                payload,
                workflow: None,
            },
        );
        drop(st);
        self.inner.changed.notify_waiters();
    }
}

impl Queue {
    fn push(&mut self, receipt: String, stored: Stored) {
        self.ready.push_back(receipt.clone());
        self.msgs.insert(receipt, stored);
    }

    /// Removes an in-flight message; `None` if it was not in flight.
    fn take(&mut self, receipt: &str) -> Option<Stored> {
        if self.in_flight.remove(receipt) {
            self.msgs.remove(receipt)
        } else {
            None
        }
    }
}

impl St {
    fn receipt(&mut self) -> String {
        self.next_receipt += 1;
        format!("m{}", self.next_receipt)
    }

    fn queue(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.to_owned()).or_default()
    }

    fn is_idle(&self) -> bool {
        self.queues
            .values()
            .all(|q| q.msgs.is_empty() && q.in_flight.is_empty())
    }

    /// Enqueues a message; returns the queue it became ready on, if not delayed.
    fn enqueue(&mut self, mut message: Message, delay: Option<Duration>) -> Option<String> {
        let receipt = self.receipt();
        let ready = match delay {
            Some(d) if !d.is_zero() => {
                message.queue_name = dq_name(&message.queue_name);
                let eta = now_millis().saturating_add(d.as_millis() as u64);
                message.options.insert("eta".into(), Value::from(eta));
                None
            }
            _ => Some(message.queue_name.clone()),
        };
        message
            .options
            .insert("redis_message_id".into(), Value::from(receipt.clone()));
        let workflow = message.workflow();
        if let Some(w) = &workflow {
            if let Some(wf) = self.workflows.get_mut(&w.id) {
                wf.receipts
                    .insert(w.node, (message.queue_name.clone(), receipt.clone()));
            }
        }
        let queue = message.queue_name.clone();
        let payload = message.encode();
        self.queue(&queue)
            .push(receipt, Stored { payload, workflow });
        ready
    }

    fn apply(&mut self, id: &str, fx: Effects, woke: &mut Vec<String>) {
        for (m, d) in fx.enqueue {
            woke.extend(self.enqueue(m, d));
        }
        let Some(wf) = self.workflows.get_mut(id) else {
            return;
        };
        if fx.finished {
            wf.finished_at = Some(Instant::now());
        }
        let drop: Vec<_> = fx
            .skipped
            .iter()
            .filter_map(|n| wf.receipts.get(n).cloned())
            .collect();
        for (queue, receipt) in drop {
            let q = self.queue(&queue);
            if !q.in_flight.contains(&receipt) {
                q.msgs.remove(&receipt);
                q.ready.retain(|r| *r != receipt);
            }
        }
    }

    fn workflow_running(&self, w: &WorkflowRef) -> bool {
        // Running workflows are never purged: an unknown one finished long ago.
        self.workflows
            .get(&w.id)
            .is_some_and(|wf| !wf.state.state().is_finished())
    }

    fn settle(&mut self, s: &Settlement, woke: &mut Vec<String>) {
        match s {
            Settlement::Ack { queue, receipt } => {
                self.queue(queue).take(receipt);
            }
            Settlement::Complete {
                queue,
                receipt,
                workflow,
            } => {
                self.queue(queue).take(receipt);
                if let Some(wf) = self.workflows.get_mut(&workflow.id) {
                    let fx = wf.state.complete(workflow.node);
                    self.apply(&workflow.id, fx, woke);
                }
            }
            Settlement::Replace {
                queue,
                receipt,
                message,
                delay,
            } => {
                if self.queue(queue).take(receipt).is_some() {
                    let keep = message.workflow().is_none_or(|w| self.workflow_running(&w));
                    if keep {
                        woke.extend(self.enqueue(message.clone(), *delay));
                    }
                }
            }
            Settlement::DeadLetter {
                queue,
                receipt,
                reason,
                workflow,
            } => {
                if let Some(stored) = self.queue(queue).take(receipt) {
                    self.dead
                        .entry(q_name(queue).to_owned())
                        .or_default()
                        .push(DeadLetter {
                            payload: stored.payload,
                            reason: reason.clone(),
                        });
                }
                if let Some(w) = workflow {
                    if let Some(wf) = self.workflows.get_mut(&w.id) {
                        let fx = wf.state.fail(w.node, reason);
                        self.apply(&w.id, fx, woke);
                    }
                }
            }
            Settlement::Requeue { queue, receipt } => {
                let q = self.queue(queue);
                if q.in_flight.remove(receipt) && q.msgs.contains_key(receipt) {
                    q.ready.push_back(receipt.clone());
                    woke.push(q_name(queue).to_owned());
                }
            }
        }
    }
}

impl Broker for MemoryBroker {
    fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>> {
        let mut st = self.lock();
        st.enqueue(message, delay);
        drop(st);
        self.inner.changed.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        let mut st = self.lock();
        let name: Arc<str> = Arc::from(queue);
        let mut out = Vec::new();
        let mut running = Vec::new();
        if let Some(q) = st.queues.get_mut(queue) {
            while out.len() < max {
                let Some(receipt) = q.ready.pop_front() else {
                    break;
                };
                let Some(stored) = q.msgs.get(&receipt) else {
                    continue;
                };
                if let Some(w) = &stored.workflow {
                    running.push(w.clone());
                }
                out.push(Delivery {
                    queue: name.clone(),
                    receipt: receipt.clone(),
                    payload: stored.payload.clone(),
                });
                q.in_flight.insert(receipt);
            }
        }
        for w in running {
            if let Some(wf) = st.workflows.get_mut(&w.id) {
                wf.state.mark_running(w.node);
            }
        }
        Box::pin(async { Ok(out) })
    }

    fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>> {
        let mut st = self.lock();
        let mut woke = Vec::new();
        for s in batch {
            st.settle(s, &mut woke);
        }
        drop(st);
        self.inner.changed.notify_waiters();
        woke.sort();
        woke.dedup();
        Box::pin(async { Ok(woke) })
    }

    fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>> {
        let st = self.lock();
        let q = q_name(queue);
        let dq = dq_name(q);
        let get = |n: &str| st.queues.get(n);
        let stats = QueueStats {
            ready: get(q).map_or(0, |q| q.msgs.len() - q.in_flight.len()),
            delayed: get(&dq).map_or(0, |q| q.msgs.len() - q.in_flight.len()),
            in_flight: get(q).map_or(0, |q| q.in_flight.len())
                + get(&dq).map_or(0, |q| q.in_flight.len()),
            dead: st.dead.get(q).map_or(0, Vec::len),
        };
        Box::pin(async move { Ok(stats) })
    }

    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = {
                let st = self.lock();
                queues
                    .iter()
                    .any(|q| st.queues.get(q).is_some_and(|q| !q.ready.is_empty()))
            };
            if !ready {
                let _ = tokio::time::timeout(timeout, changed).await;
            }
        })
    }

    fn submit_workflow(&self, plan: Plan) -> BoxFuture<'_, Result<()>> {
        let mut st = self.lock();
        st.workflows.retain(|_, wf| {
            wf.finished_at
                .is_none_or(|t| t.elapsed() < wf.state.plan().retention)
        });
        let id = plan.id.clone();
        let (state, fx) = State::submit(plan);
        st.workflows.insert(
            id.clone(),
            Wf {
                state,
                receipts: HashMap::new(),
                finished_at: None,
            },
        );
        let mut woke = Vec::new();
        st.apply(&id, fx, &mut woke);
        drop(st);
        self.inner.changed.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn workflow_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<WorkflowStatus>> {
        let status = self
            .lock()
            .workflows
            .get(id)
            .map(|wf| wf.state.status())
            .ok_or_else(|| Error::UnknownWorkflow(id.to_owned()));
        Box::pin(async { status })
    }

    fn cancel_workflow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        let mut st = self.lock();
        let result = match st.workflows.get_mut(id) {
            None => Err(Error::UnknownWorkflow(id.to_owned())),
            Some(wf) => {
                let fx = wf.state.cancel();
                let changed = fx.finished;
                let mut woke = Vec::new();
                st.apply(id, fx, &mut woke);
                Ok(changed)
            }
        };
        drop(st);
        self.inner.changed.notify_waiters();
        Box::pin(async { result })
    }
}
