//! The runtime of the [`workflow`](https://docs.rs/workflow) crate: dramatiq-compatible messages,
//! the actor registry, brokers (in-memory and Redis), the worker and the workflow engine.
//!
//! Use it through the `workflow` facade crate, which adds the `#[actor]` and `workflow!` macros.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod actor;
pub mod broker;
pub mod error;
pub mod message;
pub mod retry;
pub mod worker;
pub mod workflow;

pub use actor::{Actor, ActorEntry, ActorOptions, Registry, TaskError};
pub use broker::memory::MemoryBroker;
#[cfg(feature = "redis")]
pub use broker::redis::{RedisBroker, RedisBrokerBuilder};
pub use broker::{Broker, Delivery, QueueStats, Room, Settled, Settlement};
pub use error::{Error, Result};
pub use message::{Message, TypedMessage, WorkflowRef};
pub use worker::{shutdown_signal, Worker};
pub use workflow::{
    Chain, Group, NodeState, Workflow, WorkflowHandle, WorkflowState, WorkflowStatus,
};

fn noop_handler(
    _args: Vec<serde_json::Value>,
    _kwargs: serde_json::Map<String, serde_json::Value>,
) -> Result<actor::TaskFuture, TaskError> {
    Ok(Box::pin(async { Ok(()) }))
}

inventory::submit! {
    ActorEntry {
        name: workflow::NOOP_ACTOR,
        queue: workflow::NOOP_QUEUE,
        options: ActorOptions::NONE,
        handler: noop_handler,
        location: concat!(module_path!(), " (", file!(), ":", line!(), ")"),
    }
}
