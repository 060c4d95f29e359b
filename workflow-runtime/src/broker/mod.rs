//! The [`Broker`] trait and its implementations.
//!
//! A broker stores queues of messages in dramatiq's layout (a queue `X`, its delay queue `X.DQ`
//! and its dead-letter queue `X.XQ`) and the state of running workflows. The worker talks to it
//! only through this trait, so the in-memory broker and the Redis broker behave the same.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Message, WorkflowRef};
use crate::engine::{WorkflowFailure, WorkflowState, WorkflowStatus};
use crate::error::Result;

/// What a broker stores for a submitted workflow: its plan (see [`Broker::submit_workflow`]).
pub use crate::engine::{Next, Plan, PlanJoin, PlanTask};

pub mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message fetched from a queue and not yet settled.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The queue it was fetched from (`X` or `X.DQ`).
    pub queue: Arc<str>,
    /// The broker's handle for this copy of the message (`redis_message_id`).
    pub receipt: String,
    /// The encoded message; decoded by the worker, so that a bad payload is dead-lettered.
    pub payload: Vec<u8>,
}

/// What happens to a fetched message. Each is one atomic step on the broker.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Settlement {
    /// The message is done: remove it.
    Ack {
        /// Queue it was fetched from.
        queue: Arc<str>,
        /// Its receipt.
        receipt: String,
    },
    /// A workflow node succeeded: remove the message and advance the workflow (exactly once,
    /// however often this is settled for the same node).
    Complete {
        /// Queue it was fetched from.
        queue: Arc<str>,
        /// Its receipt.
        receipt: String,
        /// The workflow node.
        workflow: WorkflowRef,
    },
    /// Remove the message and enqueue `message` in its place, after `delay`: a retry, or a
    /// delayed message whose time has come. A workflow message whose workflow is no longer
    /// running is dropped instead.
    Replace {
        /// Queue it was fetched from.
        queue: Arc<str>,
        /// Its receipt.
        receipt: String,
        /// What to enqueue.
        message: Message,
        /// How long to wait before it can run.
        delay: Option<Duration>,
    },
    /// Move the message to the dead-letter queue; if it is a workflow node, fail the workflow.
    DeadLetter {
        /// Queue it was fetched from.
        queue: Arc<str>,
        /// Its receipt.
        receipt: String,
        /// Why, for logs and the workflow's status.
        reason: String,
        /// The workflow node, if any.
        workflow: Option<WorkflowRef>,
    },
    /// Give the message back, unprocessed, to the end of its queue.
    Requeue {
        /// Queue it was fetched from.
        queue: Arc<str>,
        /// Its receipt.
        receipt: String,
    },
}

impl Settlement {
    /// The queue of the settled message.
    pub fn queue(&self) -> &Arc<str> {
        match self {
            Settlement::Ack { queue, .. }
            | Settlement::Complete { queue, .. }
            | Settlement::Replace { queue, .. }
            | Settlement::DeadLetter { queue, .. }
            | Settlement::Requeue { queue, .. } => queue,
        }
    }

    /// The receipt of the settled message.
    pub fn receipt(&self) -> &str {
        match self {
            Settlement::Ack { receipt, .. }
            | Settlement::Complete { receipt, .. }
            | Settlement::Replace { receipt, .. }
            | Settlement::DeadLetter { receipt, .. }
            | Settlement::Requeue { receipt, .. } => receipt,
        }
    }
}

/// Room a worker has for more messages of one ready queue, offered with a batch of settlements
/// (see [`Broker::settle_and_take`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The queue (`X`, never `X.DQ`).
    pub queue: Arc<str>,
    /// How many more messages of it the worker can hold (at least 1).
    pub max: usize,
}

/// What [`Broker::settle_and_take`] did.
#[derive(Debug, Default)]
pub struct Settled {
    /// The canonical queues onto which settling enqueued something ready to run that may still
    /// be there (as [`Broker::settle`] returns).
    pub ready: Vec<String>,
    /// Messages handed to the worker in the same step: in flight, as if fetched.
    pub taken: Vec<Delivery>,
}

/// Sizes of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting on `X`.
    pub ready: usize,
    /// Messages waiting on `X.DQ`.
    pub delayed: usize,
    /// Messages fetched from `X` or `X.DQ` and not yet settled.
    pub in_flight: usize,
    /// Messages on the dead-letter queue `X.XQ`.
    pub dead: usize,
}

/// Where messages and workflow state live.
///
/// Implementations must make every method that changes state atomic; see each method.
pub trait Broker: Send + Sync + 'static {
    /// Enqueues a message on its queue, or on the queue's `.DQ` with `options.eta` if `delay`
    /// is given.
    fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>>;

    /// Takes up to `max` messages from `queue` (which may be `X.DQ`); they stay in flight until
    /// settled.
    fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>>;

    /// Settles fetched messages; each settlement is atomic on its own. Returns the canonical
    /// queues onto which settling enqueued something ready to run.
    ///
    /// Settling the same batch again (after an error that left it unclear whether the first
    /// call went through) must change nothing more.
    fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>>;

    /// Settles like [`Broker::settle`] and, in the same step, may take up to `room.max`
    /// messages of each `room.queue` onto which settling enqueued something (the successors of
    /// a completed workflow node, say) and hand them to the caller, in flight as if fetched:
    /// a chain then costs one request to the broker per step instead of two.
    ///
    /// The caller must be able to hold what it offered room for. The default takes nothing.
    ///
    /// ```
    /// # async fn demo() -> workflow_runtime::Result<()> {
    /// use std::sync::Arc;
    /// use workflow_runtime::broker::{Broker, Room};
    /// use workflow_runtime::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// let room = [Room { queue: Arc::from("default"), max: 8 }];
    /// let settled = broker.settle_and_take(&[], &room).await?;
    /// assert!(settled.taken.is_empty());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    fn settle_and_take<'a>(
        &'a self,
        batch: &'a [Settlement],
        room: &'a [Room],
    ) -> BoxFuture<'a, Result<Settled>> {
        let _ = room;
        Box::pin(async move {
            Ok(Settled {
                ready: self.settle(batch).await?,
                taken: Vec::new(),
            })
        })
    }

    /// Sizes of a queue (by its canonical name).
    fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>>;

    /// Resolves when one of `queues` may have messages, or after `timeout`.
    ///
    /// Brokers that cannot tell just sleep; the worker backs off between empty polls.
    fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()>;

    /// Tells the broker this worker is alive and lets it recover messages of dead workers.
    /// The worker calls it every [`Broker::heartbeat_interval`].
    fn heartbeat<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<()>> {
        let _ = queues;
        Box::pin(async { Ok(()) })
    }

    /// How often the worker should call [`Broker::heartbeat`].
    fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// Submits a workflow: writes its state and enqueues its first tasks in one atomic step.
    fn submit_workflow(&self, plan: Plan) -> BoxFuture<'_, Result<()>>;

    /// The state of a workflow and of each of its nodes.
    fn workflow_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<WorkflowStatus>>;

    /// The state of a workflow without its nodes: cheap enough to poll (`WorkflowHandle::wait`
    /// does). The failure is set when the state is `Failed`.
    fn workflow_state<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(WorkflowState, Option<WorkflowFailure>)>> {
        Box::pin(async move {
            let status = self.workflow_status(id).await?;
            Ok((status.state, status.failure))
        })
    }

    /// Cancels a running workflow: nothing further starts and its queued tasks are skipped.
    /// Returns `false` if it had already finished.
    fn cancel_workflow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>>;
}

macro_rules! forward_broker {
    ($($ty:ty),*) => {$(
        impl<B: Broker + ?Sized> Broker for $ty {
            fn enqueue(&self, message: Message, delay: Option<Duration>) -> BoxFuture<'_, Result<()>> {
                (**self).enqueue(message, delay)
            }
            fn fetch<'a>(&'a self, queue: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Delivery>>> {
                (**self).fetch(queue, max)
            }
            fn settle<'a>(&'a self, batch: &'a [Settlement]) -> BoxFuture<'a, Result<Vec<String>>> {
                (**self).settle(batch)
            }
            fn settle_and_take<'a>(
                &'a self,
                batch: &'a [Settlement],
                room: &'a [Room],
            ) -> BoxFuture<'a, Result<Settled>> {
                (**self).settle_and_take(batch, room)
            }
            fn queue_stats<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueStats>> {
                (**self).queue_stats(queue)
            }
            fn wait_for_work<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
                (**self).wait_for_work(queues, timeout)
            }
            fn heartbeat<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<()>> {
                (**self).heartbeat(queues)
            }
            fn heartbeat_interval(&self) -> Duration {
                (**self).heartbeat_interval()
            }
            fn submit_workflow(&self, plan: Plan) -> BoxFuture<'_, Result<()>> {
                (**self).submit_workflow(plan)
            }
            fn workflow_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<WorkflowStatus>> {
                (**self).workflow_status(id)
            }
            fn workflow_state<'a>(
                &'a self,
                id: &'a str,
            ) -> BoxFuture<'a, Result<(WorkflowState, Option<WorkflowFailure>)>> {
                (**self).workflow_state(id)
            }
            fn cancel_workflow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
                (**self).cancel_workflow(id)
            }
        }
    )*};
}

forward_broker!(Arc<B>, Box<B>, &'static B);
