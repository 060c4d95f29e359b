//! [`WorkflowHandle`]: a submitted workflow, seen from the client.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::engine::{WorkflowFailure, WorkflowState, WorkflowStatus};
use crate::error::{Error, Result};

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
