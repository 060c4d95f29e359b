//! What a submitted workflow is doing.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::error::{Error, Result};

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

/// A submitted workflow.
#[derive(Clone)]
pub struct WorkflowHandle {
    id: String,
    broker: Arc<dyn Broker>,
}

impl fmt::Debug for WorkflowHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl WorkflowHandle {
    /// A handle on the workflow `id` of `broker`, e.g. in another process than the one that
    /// submitted it.
    pub fn new(id: String, broker: Arc<dyn Broker>) -> Self {
        WorkflowHandle { id, broker }
    }

    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its current status.
    pub async fn status(&self) -> Result<WorkflowStatus> {
        self.broker.workflow_status(&self.id).await
    }

    /// Cancels it: nothing further starts, queued tasks are skipped. Returns `false` if it had
    /// already finished.
    pub async fn cancel(&self) -> Result<bool> {
        self.broker.cancel_workflow(&self.id).await
    }

    /// Waits until the workflow finished; `Ok` if it succeeded, an error saying which node
    /// failed (or that it was cancelled) otherwise.
    pub async fn wait(&self) -> Result<WorkflowStatus> {
        self.wait_for(None).await
    }

    /// Like [`wait`](Self::wait), but gives up with [`Error::Timeout`] after `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<WorkflowStatus> {
        self.wait_for(Some(timeout)).await
    }

    async fn wait_for(&self, timeout: Option<Duration>) -> Result<WorkflowStatus> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let (state, failure) = self.broker.workflow_state(&self.id).await?;
            match state {
                WorkflowState::Succeeded => return self.status().await,
                WorkflowState::Cancelled => return Err(Error::WorkflowCancelled(self.id.clone())),
                WorkflowState::Failed => {
                    let f = failure.unwrap_or(WorkflowFailure {
                        node: 0,
                        actor: String::new(),
                        error: "unknown".into(),
                    });
                    return Err(Error::WorkflowFailed {
                        id: self.id.clone(),
                        node: f.node,
                        actor: f.actor,
                        error: f.error,
                    });
                }
                WorkflowState::Running => {}
            }
            if let Some(t) = timeout {
                if start.elapsed() >= t {
                    return Err(Error::Timeout(t));
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
