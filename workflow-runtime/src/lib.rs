//! The runtime of the [`workflow`](https://docs.rs/workflow) crate: dramatiq-compatible messages,
//! the actor registry, brokers (in-memory and Redis), the worker and the workflow engine.
//!
//! Use it through the `workflow` facade crate, which adds the `#[actor]` and `workflow!` macros.
//!
//! # Layers
//!
//! Each module uses only those listed before it (a test checks it):
//!
//! 1. [`engine`]: the engine's data: messages, plans, the workflow state machine and statuses.
//!    Pure: no I/O.
//! 2. [`broker`]: where messages and workflow state live: the [`Broker`] trait,
//!    [`MemoryBroker`], and the Redis broker.
//! 3. [`client`]: what producers use: [`Workflow`], [`WorkflowHandle`], [`TypedMessage`].
//! 4. [`worker`]: consumers, execution, retries and settlement.
//!
//! [`error`] is shared by all of them.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod error;

pub mod engine;

pub mod broker;

pub mod client;

pub mod worker;

pub use broker::memory::MemoryBroker;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use broker::redis::{RedisBroker, RedisBrokerBuilder};
pub use broker::{Broker, Delivery, QueueStats, Room, Settled, Settlement};
pub use client::{Actor, ActorOptions, Chain, Group, TypedMessage, Workflow, WorkflowHandle};
pub use engine::{Message, NodeState, NodeStatus, WorkflowRef, WorkflowState, WorkflowStatus};
pub use error::{Error, Result};
pub use worker::registry::{ActorEntry, Registry, TaskError};
pub use worker::{shutdown_signal, Worker};

fn noop_handler(
    _args: Vec<serde_json::Value>,
    _kwargs: serde_json::Map<String, serde_json::Value>,
) -> Result<worker::registry::TaskFuture, TaskError> {
    Ok(Box::pin(async { Ok(()) }))
}

inventory::submit! {
    ActorEntry {
        name: client::NOOP_ACTOR,
        queue: client::NOOP_QUEUE,
        options: ActorOptions::NONE,
        handler: noop_handler,
        location: concat!(module_path!(), " (", file!(), ":", line!(), ")"),
    }
}
