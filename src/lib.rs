//! Typed background-task workflows for Rust, on Redis, wire-compatible with Python's dramatiq.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

pub use workflow_macros::actor;
pub use workflow_macros::{chain, delay, group, workflow};
pub use workflow_runtime::actor::{ActorEntry, Registry, TaskError};
pub use workflow_runtime::broker::{self, Broker, Delivery, QueueStats, Settlement};
pub use workflow_runtime::error::{Error, Result};
pub use workflow_runtime::message::{self, Message, TypedMessage, WorkflowRef};
pub use workflow_runtime::worker::{shutdown_signal, Worker};
pub use workflow_runtime::workflow as engine;
pub use workflow_runtime::workflow::{
    Chain, Group, NodeState, NodeStatus, Workflow, WorkflowHandle, WorkflowState, WorkflowStatus,
};
pub use workflow_runtime::{retry, Actor, ActorOptions, MemoryBroker};

/// Everything needed to define actors, build workflows and run a worker.
pub mod prelude {
    pub use crate::actor;
    pub use crate::{chain, delay, group, workflow};
    pub use workflow_runtime::{Broker, MemoryBroker, Worker};
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json::{Map, Value};
    pub use workflow_runtime::actor::*;
    pub use workflow_runtime::message::TypedMessage;
    pub use workflow_runtime::workflow::{Next, StaticPlan, StaticTask, Workflow};
    pub use workflow_runtime::workflow::Group;

    /// A step of a `workflow!` literal. The bound reports a step that is not an actor at the
    /// user's path: "`x` is not an actor".
    pub fn step<A: Actor>(message: TypedMessage<A>) -> Workflow {
        Workflow::from(message)
    }
}
