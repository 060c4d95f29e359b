//! Layer 3, the client: what a producer uses to build and submit work and follow it.
//!
//! [`Workflow`] (with [`Chain`] and [`Group`]) builds a workflow and flattens it into a
//! [`Plan`](crate::engine::Plan) that a broker runs; [`WorkflowHandle`] follows a submitted
//! workflow; [`TypedMessage`] is one actor's message, sent on its own or as a workflow step.
//! This layer uses the brokers (layer 2) and the engine's data (layer 1), never the worker.

pub mod actor;
pub mod handle;
pub mod workflow;

pub use actor::{Actor, ActorArg, ActorOptions, TypedMessage};
pub use handle::WorkflowHandle;
pub use workflow::{Chain, Group, Workflow, DEFAULT_RETENTION, NOOP_ACTOR, NOOP_QUEUE};
