//! A workflow flattened into a table of task nodes and join nodes.

use std::time::Duration;

use super::message::Message;

/// What happens when a task node or join node completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Count down the join with this index.
    Join(u32),
    /// Enqueue the tasks of the start set with this index.
    Start(u32),
    /// The workflow succeeded.
    End,
}

/// One task node: a message to enqueue when the node starts.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanTask {
    /// The message, with `options.workflow = {id, node}` already set.
    pub message: Message,
    /// How long after its start the message may run.
    pub delay: Option<Duration>,
    /// What its completion does.
    pub next: Next,
}

/// One join node: the barrier at the end of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanJoin {
    /// How many members report to it.
    pub count: u32,
    /// What happens when all of them did.
    pub next: Next,
}

/// A workflow ready to submit: every fan-out expanded, every run-time-empty group removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The workflow's id (a UUID string).
    pub id: String,
    /// Task nodes; a node's index is its number in `options.workflow.node`.
    pub tasks: Vec<PlanTask>,
    /// Join nodes.
    pub joins: Vec<PlanJoin>,
    /// Start sets: the task nodes that start together when an element starts.
    pub starts: Vec<Vec<u32>>,
    /// The tasks that start when the workflow is submitted (empty: it succeeds at once).
    pub entry: Vec<u32>,
    /// Enqueued once when the workflow succeeds.
    pub on_success: Option<Message>,
    /// Enqueued once when a node fails for good.
    pub on_failure: Option<Message>,
    /// How long the state of a finished workflow is kept.
    pub retention: Duration,
}

impl Plan {
    /// The number of task nodes.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the workflow has no task at all.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// The flattened shape of a `workflow!` literal (or a part of one without fan-outs or embedded
/// expressions), computed at compile time. Task `i` is the literal's `i`-th step.
#[doc(hidden)]
#[derive(Debug)]
pub struct StaticPlan {
    /// Per task: what its completion does (`End` = the literal's own continuation) and the
    /// delay slots whose sum delays its start.
    pub tasks: &'static [StaticTask],
    /// Joins: member count and what happens when all members reported.
    pub joins: &'static [(u32, Next)],
    /// Start sets.
    pub starts: &'static [&'static [u32]],
    /// Tasks that start when the literal starts.
    pub entry: &'static [u32],
}

/// One task of a [`StaticPlan`].
#[doc(hidden)]
#[derive(Debug)]
pub struct StaticTask {
    /// What its completion does.
    pub next: Next,
    /// Indexes into the literal's delay values; their sum delays the task's start.
    pub delays: &'static [u16],
}
