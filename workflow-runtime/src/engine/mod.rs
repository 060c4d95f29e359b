//! Layer 1, the engine's data: messages, plans, the workflow state machine and statuses.
//!
//! Everything here is pure: no I/O, no clock but [`now_millis`] for message timestamps. The
//! brokers (layer 2, [`crate::broker`]) store this data and run the state machine
//! ([`State`]), the in-memory broker in Rust and the Redis broker in Lua, both following the
//! semantics written down in [`state`].

pub mod message;
pub mod plan;
pub mod state;
pub mod status;

pub use message::{
    dq_name, is_valid_queue_name, now_millis, q_name, xq_name, Message, WorkflowRef, MAX_DEPTH,
    WORKFLOW_OPTION,
};
pub use plan::{Next, Plan, PlanJoin, PlanTask, StaticPlan, StaticTask};
pub use state::{Effects, State};
pub use status::{NodeState, NodeStatus, WorkflowFailure, WorkflowState, WorkflowStatus};
