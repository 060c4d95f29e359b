//! Typed background-task workflows for Rust, on Redis, wire-compatible with Python's dramatiq.
//!
//! - [`#[actor]`](macro@actor) turns an `async fn` (or a plain `fn`) into an actor: a typed
//!   message constructor, a name and a queue, retry and time-limit options, and registration so
//!   that a [`Worker`] finds it.
//! - [`workflow!`] compiles a literal of nested [`chain!`]s (in sequence) and [`group!`]s (in
//!   parallel), with delays and fan-outs, into a type-checked [`Workflow`].
//! - A [`Broker`] stores queues and workflow state: [`MemoryBroker`] in this process (examples,
//!   tests), `RedisBroker` on Redis in dramatiq's layout and message format (feature `redis`,
//!   on by default). Each completed task advances its workflow in one atomic step, exactly
//!   once, even when a worker dies and its messages are delivered again.
//!
//! # Actors and messages
//!
//! ```
//! use std::time::Duration;
//! use workflow::prelude::*;
//!
//! #[actor(queue = "images", max_retries = 5, min_backoff = "1s", time_limit = "30s")]
//! async fn resize(image_id: u64, width: u32) -> Result<(), String> {
//!     println!("resizing {image_id} to {width}px");
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> workflow::Result<()> {
//! let broker = MemoryBroker::new();
//! resize::message(42, 640).send(&broker).await?;
//! resize::message(43, 640).with_delay(Duration::from_millis(10)).send(&broker).await?;
//!
//! // A worker runs every actor linked into the binary, until its shutdown future resolves.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let worker = tokio::spawn(Worker::new(broker.clone()).run_until(async { stopped.await.ok(); }));
//! broker.join(Duration::from_secs(10)).await?;   // every queue empty, nothing in flight
//! stop.send(()).ok();
//! worker.await.unwrap()?;
//! # Ok(())
//! # }
//! ```
//!
//! A message's arguments are checked against the actor's signature:
//!
//! ```compile_fail
//! use workflow::prelude::*;
//!
//! #[actor]
//! async fn resize(image_id: u64, width: u32) {}
//!
//! let _ = resize::message(42, "640"); // expected `u32`, found `&str`
//! ```
//!
//! # Workflows
//!
//! ```
//! use std::time::Duration;
//! use workflow::prelude::*;
//!
//! #[actor] async fn fetch(url: String) {}
//! #[actor] async fn thumbnail(id: u64) {}
//! #[actor] async fn publish() {}
//! #[actor] async fn alert(reason: String) {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> workflow::Result<()> {
//! let ids = vec![1, 2, 3];
//! let wf = workflow!(chain![
//!     fetch("https://example.com/album".into()),
//!     group![for id in ids => thumbnail(id)],              // fan-out over run-time data
//!     delay!(Duration::from_millis(5), publish()),         // 5 ms after the group finished
//! ])
//! .on_failure(alert::message("the album failed".into()));  // enqueued once if a task fails for good
//!
//! let broker = MemoryBroker::new();
//! let handle = wf.run(&broker).await?;                    // returns at once
//! # let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # let worker = tokio::spawn(Worker::new(broker.clone()).run_until(async { stopped.await.ok(); }));
//! let status = handle.wait_timeout(Duration::from_secs(10)).await?;
//! assert_eq!(status.state, WorkflowState::Succeeded);
//! assert_eq!(status.count(NodeState::Done), 5);
//! # stop.send(()).ok();
//! # worker.await.unwrap()?;
//! # Ok(())
//! # }
//! ```
//!
//! Mistakes in a literal are compile errors at the offending token:
//!
//! ```compile_fail
//! use workflow::prelude::*;
//!
//! #[actor] async fn a() {}
//!
//! let _ = workflow!(chain![a(), group![]]); // empty `group![]`: a group needs at least one element
//! ```
//!
//! The same shapes can be built at run time with [`Workflow::chain`], [`Workflow::group`],
//! [`Workflow::delay`], [`Chain`] and [`Group`].
//!
//! # Guarantees
//!
//! - A message runs at least once: it stays on the broker until its task finished, and the
//!   messages of a worker that died are delivered again.
//! - A workflow advances exactly once per task: completing a node is one atomic step that is
//!   idempotent, so a redelivered task does not start its successors twice.
//! - A message carries only its own arguments plus `{"workflow": {"id", "node"}}` in its
//!   options: its size does not grow with the workflow.
//! - Failed attempts are retried with exponential backoff (dramatiq's defaults: 20 retries,
//!   15 s to 7 days); a message that exhausts its retries, names an unknown actor or does not
//!   decode goes to the dead-letter queue with the reason logged.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

pub use workflow_macros::actor;
pub use workflow_macros::{chain, delay, group, workflow};
pub use workflow_runtime::broker::{self, Broker, Delivery, QueueStats, Room, Settled, Settlement};
pub use workflow_runtime::client::{
    Actor, ActorOptions, Chain, Group, TypedMessage, Workflow, WorkflowHandle,
};
pub use workflow_runtime::engine::{
    Message, NodeState, NodeStatus, WorkflowFailure, WorkflowRef, WorkflowState, WorkflowStatus,
};
pub use workflow_runtime::error::{Error, Result};
pub use workflow_runtime::worker::registry::{ActorEntry, Registry, TaskError};
pub use workflow_runtime::worker::{shutdown_signal, Worker};
pub use workflow_runtime::MemoryBroker;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use workflow_runtime::{RedisBroker, RedisBrokerBuilder};

/// Everything needed to define actors, build workflows and run a worker.
pub mod prelude {
    pub use crate::actor;
    #[cfg(feature = "redis")]
    pub use crate::RedisBroker;
    pub use crate::{chain, delay, group, workflow};
    pub use crate::{
        Broker, MemoryBroker, NodeState, Worker, Workflow, WorkflowHandle, WorkflowState,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json::{Map, Value};
    pub use workflow_runtime::client::actor::{
        assert_arg, to_arg, Actor, ActorArg, ActorOptions, TypedMessage,
    };
    pub use workflow_runtime::client::{Group, Workflow};
    pub use workflow_runtime::engine::{Next, StaticPlan, StaticTask};
    pub use workflow_runtime::worker::registry::{
        assert_return, bind_args, run_async, run_blocking, take_arg, ActorEntry, ActorReturn,
        Handler,
    };

    /// A step of a `workflow!` literal. The bound reports a step that is not an actor at the
    /// user's path: "`x` is not an actor".
    pub fn step<A: Actor>(message: TypedMessage<A>) -> Workflow {
        Workflow::from(message)
    }
}
