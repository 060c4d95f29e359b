//! The workflow engine's state machine, as the in-memory broker runs it.
//!
//! The Redis broker runs the same transitions in Lua (`lua/engine.lua`); both follow the plan's
//! table: completing a node counts down its join, a join at zero fires its own `next`, a start
//! set enqueues its tasks, `End` finishes the workflow.

use std::time::Duration;

use serde_json::{Map, Value};

use super::message::{now_millis, Message};
use super::plan::{Next, Plan};
use super::status::{NodeState, NodeStatus, WorkflowFailure, WorkflowState, WorkflowStatus};

/// What a transition asks the broker to do.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages to enqueue (task nodes that start, or a success/failure handler).
    pub enqueue: Vec<(Message, Option<Duration>)>,
    /// Nodes whose queued messages must be dropped (the workflow stopped).
    pub skipped: Vec<u32>,
    /// Whether the workflow has just finished.
    pub finished: bool,
}

/// The live state of one workflow.
#[derive(Debug)]
pub struct State {
    plan: Plan,
    nodes: Vec<NodeState>,
    remaining: Vec<u32>,
    state: WorkflowState,
    failure: Option<WorkflowFailure>,
}

impl State {
    /// Starts a workflow: its entry tasks are enqueued; an empty one succeeds at once.
    pub fn submit(plan: Plan) -> (State, Effects) {
        let mut state = State {
            nodes: vec![NodeState::Waiting; plan.tasks.len()],
            remaining: plan.joins.iter().map(|j| j.count).collect(),
            state: WorkflowState::Running,
            failure: None,
            plan,
        };
        let mut fx = Effects::default();
        if state.plan.entry.is_empty() {
            state.finish(WorkflowState::Succeeded, &mut fx);
        } else {
            let entry = state.plan.entry.clone();
            state.start(&entry, &mut fx);
        }
        (state, fx)
    }

    /// The plan it runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The workflow's state.
    pub fn state(&self) -> WorkflowState {
        self.state
    }

    fn start(&mut self, tasks: &[u32], fx: &mut Effects) {
        for &t in tasks {
            let task = &self.plan.tasks[t as usize];
            let mut message = task.message.clone();
            message.message_timestamp = now_millis().into();
            fx.enqueue.push((message, task.delay));
            self.nodes[t as usize] = NodeState::Queued;
        }
    }

    fn finish(&mut self, state: WorkflowState, fx: &mut Effects) {
        self.state = state;
        fx.finished = true;
        if state == WorkflowState::Succeeded {
            if let Some(m) = &self.plan.on_success {
                fx.enqueue.push((m.clone(), None));
            }
            return;
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if matches!(n, NodeState::Waiting | NodeState::Queued) {
                if *n == NodeState::Queued {
                    fx.skipped.push(i as u32);
                }
                *n = NodeState::Skipped;
            }
        }
        if state == WorkflowState::Failed {
            if let (Some(m), Some(f)) = (&self.plan.on_failure, &self.failure) {
                let mut m = m.clone();
                m.options
                    .insert("workflow_failure".into(), failure_option(&self.plan.id, f));
                fx.enqueue.push((m, None));
            }
        }
    }

    /// A worker took the node's message.
    pub fn mark_running(&mut self, node: u32) {
        if let Some(n) = self.nodes.get_mut(node as usize) {
            if *n == NodeState::Queued {
                *n = NodeState::Running;
            }
        }
    }

    /// The node completed. Idempotent: a second completion of the same node changes nothing.
    /// After the workflow stopped, the node is recorded as done but nothing starts.
    pub fn complete(&mut self, node: u32) -> Effects {
        let mut fx = Effects::default();
        let Some(n) = self.nodes.get_mut(node as usize) else {
            return fx;
        };
        if matches!(*n, NodeState::Done | NodeState::Failed | NodeState::Waiting) {
            return fx;
        }
        *n = NodeState::Done;
        if self.state != WorkflowState::Running {
            return fx;
        }
        let mut next = self.plan.tasks[node as usize].next;
        loop {
            match next {
                Next::Join(j) => {
                    let r = &mut self.remaining[j as usize];
                    *r = r.saturating_sub(1);
                    if *r > 0 {
                        break;
                    }
                    next = self.plan.joins[j as usize].next;
                }
                Next::Start(s) => {
                    let tasks = self.plan.starts[s as usize].clone();
                    self.start(&tasks, &mut fx);
                    break;
                }
                Next::End => {
                    self.finish(WorkflowState::Succeeded, &mut fx);
                    break;
                }
            }
        }
        fx
    }

    /// The node failed for good: the workflow fails, its failure handler is enqueued, queued
    /// nodes are skipped. Only the first failure counts.
    pub fn fail(&mut self, node: u32, error: &str) -> Effects {
        let mut fx = Effects::default();
        let Some(n) = self.nodes.get_mut(node as usize) else {
            return fx;
        };
        if matches!(*n, NodeState::Done | NodeState::Failed | NodeState::Waiting) {
            return fx;
        }
        *n = NodeState::Failed;
        if self.state == WorkflowState::Running {
            self.failure = Some(WorkflowFailure {
                node,
                actor: self.plan.tasks[node as usize].message.actor_name.clone(),
                error: error.to_owned(),
            });
            self.finish(WorkflowState::Failed, &mut fx);
        }
        fx
    }

    /// Cancels the workflow if it is running.
    pub fn cancel(&mut self) -> Effects {
        let mut fx = Effects::default();
        if self.state == WorkflowState::Running {
            self.finish(WorkflowState::Cancelled, &mut fx);
        }
        fx
    }

    /// A snapshot.
    pub fn status(&self) -> WorkflowStatus {
        WorkflowStatus {
            id: self.plan.id.clone(),
            state: self.state,
            nodes: self
                .plan
                .tasks
                .iter()
                .zip(&self.nodes)
                .map(|(t, s)| NodeStatus {
                    actor: t.message.actor_name.clone(),
                    state: *s,
                })
                .collect(),
            failure: self.failure.clone(),
        }
    }
}

/// The `workflow_failure` option given to a failure handler.
pub(crate) fn failure_option(id: &str, f: &WorkflowFailure) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::from(id));
    m.insert("node".into(), Value::from(f.node));
    m.insert("actor".into(), Value::from(f.actor.clone()));
    m.insert("error".into(), Value::from(f.error.clone()));
    Value::Object(m)
}
