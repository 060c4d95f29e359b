//! Typed background-task workflows for Rust, on Redis, wire-compatible with Python's dramatiq.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

// macros come with the macro crate
pub use workflow_runtime::{
    actor::Registry, broker, error, message, retry, worker, workflow, Actor, ActorOptions, Broker,
    Error, MemoryBroker, Message, Result, TypedMessage, Worker,
};

/// Everything needed to define actors, build workflows and run a worker.
pub mod prelude {

    pub use workflow_runtime::{Broker, MemoryBroker, Worker};
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json::{Map, Value};
    pub use workflow_runtime::actor::*;
    pub use workflow_runtime::message::TypedMessage;
}
