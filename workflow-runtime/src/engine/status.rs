//! What a submitted workflow is doing.

use std::fmt;

/// The state of a whole workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkflowState {
    /// Some node has not finished yet.
    Running,
    /// Every node completed.
    Succeeded,
    /// A node failed for good; nothing further started.
    Failed,
    /// Cancelled by hand; nothing further started.
    Cancelled,
}

impl WorkflowState {
    /// Whether the workflow will not change any more.
    pub fn is_finished(self) -> bool {
        self != WorkflowState::Running
    }

    /// The name used in storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Running => "running",
            WorkflowState::Succeeded => "succeeded",
            WorkflowState::Failed => "failed",
            WorkflowState::Cancelled => "cancelled",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => WorkflowState::Running,
            "succeeded" => WorkflowState::Succeeded,
            "failed" => WorkflowState::Failed,
            "cancelled" => WorkflowState::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one task node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Not started: its predecessors have not finished.
    Waiting,
    /// Its message is on a queue (or delayed).
    Queued,
    /// A worker has taken its message.
    Running,
    /// It completed.
    Done,
    /// It failed for good.
    Failed,
    /// The workflow stopped before it ran.
    Skipped,
}

impl NodeState {
    /// The name used in storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Waiting => "waiting",
            NodeState::Queued => "queued",
            NodeState::Running => "running",
            NodeState::Done => "done",
            NodeState::Failed => "failed",
            NodeState::Skipped => "skipped",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node in a [`WorkflowStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The actor the node runs.
    pub actor: String,
    /// Where it is.
    pub state: NodeState,
}

/// Which node made a workflow fail, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowFailure {
    /// The node.
    pub node: u32,
    /// Its actor.
    pub actor: String,
    /// The last error.
    pub error: String,
}

/// A snapshot of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowStatus {
    /// The workflow's id.
    pub id: String,
    /// Its state.
    pub state: WorkflowState,
    /// Each task node, by node number.
    pub nodes: Vec<NodeStatus>,
    /// Set when the state is `Failed`.
    pub failure: Option<WorkflowFailure>,
}

impl WorkflowStatus {
    /// How many nodes are in `state`.
    pub fn count(&self, state: NodeState) -> usize {
        self.nodes.iter().filter(|n| n.state == state).count()
    }
}
