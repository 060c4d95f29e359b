//! Workflows: chains and groups of actor messages, nested to any depth, with delays.
//!
//! A [`Workflow`] is a tree of steps (one actor message each), chains (run in sequence), groups
//! (run in parallel) and delays. [`Workflow::run`] flattens it into a [`Plan`] of task nodes and
//! join nodes and submits it in one atomic step; the broker then advances it exactly once per
//! completed node.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::actor::{Actor, TypedMessage};
use super::handle::WorkflowHandle;
use crate::broker::Broker;
use crate::engine::{Message, Next, Plan, PlanJoin, PlanTask, StaticPlan, WORKFLOW_OPTION};
use crate::error::{Error, Result};

/// The built-in actor that stands for an empty element with a delay (as in dramatiq-workflow).
pub const NOOP_ACTOR: &str = "workflow_noop";
/// The queue of [`NOOP_ACTOR`].
pub const NOOP_QUEUE: &str = "default";
/// How long a finished workflow's state is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
enum Element {
    Step(std::result::Result<Message, (&'static str, String)>),
    Chain(Vec<Element>),
    Group(Vec<Element>),
    Delay(Duration, Box<Element>),
    /// A literal shape flattened at compile time by `workflow!`, with its steps and delays.
    Static(&'static StaticPlan, Vec<Element>, Vec<Duration>),
}

/// A workflow: a step, a chain, a group or a delayed element, nested to any depth.
///
/// Usually written with the `workflow!` macro; this is the builder API it expands to.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::client::{Chain, Group, Workflow};
/// # use workflow_runtime::Message;
/// # let msg = |n: &str| Workflow::message(Message::new("default", n, vec![]));
/// let wf = Chain::new()
///     .then(msg("a"))
///     .then(Group::new().with(msg("b")).with(msg("c")))
///     .then(Workflow::delay(Duration::from_secs(1), msg("d")));
/// let wf = Workflow::from(wf);
/// assert_eq!(wf.plan().unwrap().len(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct Workflow {
    root: Element,
    on_success: Option<Element>,
    on_failure: Option<Element>,
    retention: Duration,
}

impl Workflow {
    fn new(root: Element) -> Self {
        Workflow {
            root,
            on_success: None,
            on_failure: None,
            retention: DEFAULT_RETENTION,
        }
    }

    /// A workflow of one raw message (its delay option, if any, is not read).
    pub fn message(message: Message) -> Self {
        Workflow::new(Element::Step(Ok(message)))
    }

    /// Runs the elements one after the other.
    pub fn chain<I: IntoIterator<Item = W>, W: Into<Workflow>>(elements: I) -> Self {
        Workflow::new(Element::Chain(
            elements.into_iter().map(|w| w.into().root).collect(),
        ))
    }

    /// Runs the elements in parallel; the group completes when all of them did. An empty group
    /// completes at once.
    pub fn group<I: IntoIterator<Item = W>, W: Into<Workflow>>(elements: I) -> Self {
        Workflow::new(Element::Group(
            elements.into_iter().map(|w| w.into().root).collect(),
        ))
    }

    /// A literal flattened at compile time; `steps` are single-step workflows in step order.
    #[doc(hidden)]
    pub fn from_static(
        plan: &'static StaticPlan,
        steps: Vec<Workflow>,
        delays: Vec<Duration>,
    ) -> Self {
        assert_eq!(
            plan.tasks.len(),
            steps.len(),
            "a static plan has one step per task"
        );
        Workflow::new(Element::Static(
            plan,
            steps.into_iter().map(|w| w.root).collect(),
            delays,
        ))
    }

    /// Starts `element` `delay` after its predecessor finished (or after submission).
    pub fn delay(delay: Duration, element: impl Into<Workflow>) -> Self {
        Workflow::new(Element::Delay(delay, Box::new(element.into().root)))
    }

    /// Enqueues `message` once when the whole workflow succeeded.
    pub fn on_success(mut self, message: impl Into<Workflow>) -> Self {
        self.on_success = Some(message.into().root);
        self
    }

    /// Enqueues `message` once when a node of the workflow fails for good (its retries are
    /// exhausted). The message gets the option `workflow_failure` with the workflow id, node,
    /// actor and error.
    pub fn on_failure(mut self, message: impl Into<Workflow>) -> Self {
        self.on_failure = Some(message.into().root);
        self
    }

    /// How long the broker keeps the state of the workflow after it finished (default 7 days).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Flattens the workflow into a plan with a fresh id.
    pub fn plan(&self) -> Result<Plan> {
        self.plan_with_id(uuid::Uuid::new_v4().to_string())
    }

    /// Flattens the workflow into a plan with the given id.
    pub fn plan_with_id(&self, id: String) -> Result<Plan> {
        let callback = |e: &Option<Element>| -> Result<Option<Message>> {
            match e {
                None => Ok(None),
                Some(Element::Step(m)) => step_message(m).map(Some),
                Some(_) => Err(Error::Config(
                    "on_success and on_failure take one actor message, not a chain or group".into(),
                )),
            }
        };
        let mut builder = Builder {
            id,
            tasks: Vec::new(),
            joins: Vec::new(),
            starts: Vec::new(),
        };
        let entry = match prune(&self.root) {
            Some(root) => builder.build(&root, Next::End, Duration::ZERO)?,
            None => Vec::new(),
        };
        place_noops(&mut builder.tasks);
        Ok(Plan {
            on_success: callback(&self.on_success)?,
            on_failure: callback(&self.on_failure)?,
            id: builder.id,
            tasks: builder.tasks,
            joins: builder.joins,
            starts: builder.starts,
            entry,
            retention: self.retention,
        })
    }

    /// Submits the workflow to `broker` and returns at once; the workflow runs in the
    /// background. The returned handle reports its status, cancels it, or waits for it.
    pub async fn run<B: Broker + Clone>(self, broker: &B) -> Result<WorkflowHandle> {
        let plan = self.plan()?;
        let id = plan.id.clone();
        broker.submit_workflow(plan).await?;
        Ok(WorkflowHandle::new(id, Arc::new(broker.clone())))
    }
}

fn step_message(m: &std::result::Result<Message, (&'static str, String)>) -> Result<Message> {
    m.clone().map_err(|(actor, e)| Error::Encode {
        actor,
        source: <serde_json::Error as serde::de::Error>::custom(e),
    })
}

/// Puts each `workflow_noop` task (a delayed empty element) on the queue of the nearest real
/// task, the next one in reading order if there is one: a worker of this workflow consumes
/// that queue, while nothing says one consumes `default`. Every worker knows `workflow_noop`.
fn place_noops(tasks: &mut [PlanTask]) {
    let is_noop = |t: &PlanTask| t.message.actor_name == NOOP_ACTOR && t.message.args.is_empty();
    for i in 0..tasks.len() {
        if !is_noop(&tasks[i]) {
            continue;
        }
        let near = tasks[i + 1..]
            .iter()
            .chain(tasks[..i].iter().rev())
            .find(|t| !is_noop(t))
            .map(|t| t.message.queue_name.clone());
        if let Some(queue) = near {
            tasks[i].message.queue_name = queue;
        }
    }
}

/// Removes run-time-empty groups and chains; an empty element with a delay becomes a
/// `workflow_noop` step so that the delay is kept.
fn prune(e: &Element) -> Option<Element> {
    match e {
        Element::Step(_) | Element::Static(..) => Some(e.clone()),
        Element::Chain(cs) => {
            let cs: Vec<_> = cs.iter().filter_map(prune).collect();
            (!cs.is_empty()).then_some(Element::Chain(cs))
        }
        Element::Group(cs) => {
            let cs: Vec<_> = cs.iter().filter_map(prune).collect();
            (!cs.is_empty()).then_some(Element::Group(cs))
        }
        Element::Delay(d, inner) => match prune(inner) {
            Some(inner) => Some(Element::Delay(*d, Box::new(inner))),
            None if d.is_zero() => None,
            None => Some(Element::Delay(
                *d,
                Box::new(Element::Step(Ok(Message::new(
                    NOOP_QUEUE,
                    NOOP_ACTOR,
                    Vec::new(),
                )))),
            )),
        },
    }
}

struct Builder {
    id: String,
    tasks: Vec<PlanTask>,
    joins: Vec<PlanJoin>,
    starts: Vec<Vec<u32>>,
}

impl Builder {
    /// Adds the nodes of `e` (already pruned: never empty) whose completion leads to `next`,
    /// and returns the tasks that start when `e` starts.
    fn build(&mut self, e: &Element, next: Next, delay: Duration) -> Result<Vec<u32>> {
        match e {
            Element::Step(m) => {
                let mut message = step_message(m)?;
                let node = u32::try_from(self.tasks.len())
                    .map_err(|_| Error::Config("a workflow has at most 2^32 tasks".into()))?;
                let mut wf = Map::new();
                wf.insert("id".into(), Value::from(self.id.clone()));
                wf.insert("node".into(), Value::from(node));
                message
                    .options
                    .insert(WORKFLOW_OPTION.into(), Value::Object(wf));
                let delay = (!delay.is_zero()).then_some(delay);
                self.tasks.push(PlanTask {
                    message,
                    delay,
                    next,
                });
                Ok(vec![node])
            }
            Element::Delay(d, inner) => self.build(inner, next, delay + *d),
            Element::Chain(cs) => {
                // Tasks are numbered in the literal's order: each later element's start set is
                // reserved before the element before it is built.
                let first = self.starts.len();
                self.starts.extend((1..cs.len()).map(|_| Vec::new()));
                let mut entry = Vec::new();
                for (i, c) in cs.iter().enumerate() {
                    let c_next = if i + 1 < cs.len() {
                        Next::Start((first + i) as u32)
                    } else {
                        next
                    };
                    let c_delay = if i == 0 { delay } else { Duration::ZERO };
                    let built = self.build(c, c_next, c_delay)?;
                    match i {
                        0 => entry = built,
                        _ => self.starts[first + i - 1] = built,
                    }
                }
                Ok(entry)
            }
            Element::Static(plan, steps, delays) => {
                self.build_static(plan, steps, delays, next, delay)
            }
            Element::Group(cs) => {
                let join = self.joins.len() as u32;
                self.joins.push(PlanJoin {
                    count: cs.len() as u32,
                    next,
                });
                let mut entry = Vec::new();
                for c in cs {
                    entry.extend(self.build(c, Next::Join(join), delay)?);
                }
                Ok(entry)
            }
        }
    }
}

impl Builder {
    /// Adds a compile-time-flattened literal, renumbering its nodes after the ones already
    /// built.
    fn build_static(
        &mut self,
        plan: &StaticPlan,
        steps: &[Element],
        delays: &[Duration],
        next: Next,
        delay: Duration,
    ) -> Result<Vec<u32>> {
        let (task0, join0, start0) = (
            self.tasks.len() as u32,
            self.joins.len() as u32,
            self.starts.len() as u32,
        );
        let map = |n: Next| match n {
            Next::Join(j) => Next::Join(j + join0),
            Next::Start(s) => Next::Start(s + start0),
            Next::End => next,
        };
        for (i, (task, step)) in plan.tasks.iter().zip(steps).enumerate() {
            let own: Duration = task.delays.iter().map(|&d| delays[d as usize]).sum();
            let extra = if plan.entry.contains(&(i as u32)) {
                delay
            } else {
                Duration::ZERO
            };
            // A step of a literal may itself carry a delay (`with_delay`): unwrap it.
            let (step, step_delay) = match step {
                Element::Delay(d, inner) => (&**inner, *d),
                s => (s, Duration::ZERO),
            };
            let built = self.build(step, map(task.next), own + extra + step_delay)?;
            debug_assert_eq!(built, vec![task0 + i as u32]);
        }
        self.joins
            .extend(plan.joins.iter().map(|&(count, n)| PlanJoin {
                count,
                next: map(n),
            }));
        self.starts.extend(
            plan.starts
                .iter()
                .map(|s| s.iter().map(|t| t + task0).collect()),
        );
        Ok(plan.entry.iter().map(|t| t + task0).collect())
    }
}

impl<A: Actor> From<TypedMessage<A>> for Workflow {
    /// A step; a delay given with `with_delay` becomes a delay before the step.
    fn from(m: TypedMessage<A>) -> Self {
        let delay = m.delay();
        let step = Workflow::new(Element::Step(
            m.into_message().map_err(|e| (A::NAME, e.to_string())),
        ));
        match delay {
            Some(d) => Workflow::delay(d, step),
            None => step,
        }
    }
}

/// A chain under construction: its elements run one after the other.
#[derive(Clone, Debug, Default)]
pub struct Chain(Vec<Workflow>);

impl Chain {
    /// An empty chain.
    pub fn new() -> Self {
        Chain(Vec::new())
    }

    /// Appends an element.
    pub fn then(mut self, element: impl Into<Workflow>) -> Self {
        self.0.push(element.into());
        self
    }
}

impl From<Chain> for Workflow {
    fn from(c: Chain) -> Self {
        Workflow::chain(c.0)
    }
}

/// A group under construction: its elements run in parallel.
#[derive(Clone, Debug, Default)]
pub struct Group(Vec<Workflow>);

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Group(Vec::new())
    }

    /// Adds an element.
    pub fn with(mut self, element: impl Into<Workflow>) -> Self {
        self.0.push(element.into());
        self
    }
}

impl From<Group> for Workflow {
    fn from(g: Group) -> Self {
        Workflow::group(g.0)
    }
}

impl<W: Into<Workflow>> FromIterator<W> for Group {
    fn from_iter<I: IntoIterator<Item = W>>(iter: I) -> Self {
        Group(iter.into_iter().map(Into::into).collect())
    }
}

impl<W: Into<Workflow>> FromIterator<W> for Chain {
    fn from_iter<I: IntoIterator<Item = W>>(iter: I) -> Self {
        Chain(iter.into_iter().map(Into::into).collect())
    }
}
