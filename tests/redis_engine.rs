//! The Lua workflow engine against the reference semantics (`workflow/engine.rs`): random
//! workflows, completed in random order with redelivered completions, start every step once,
//! never before its predecessors, and succeed.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use support::{broker, redis_url, Cleanup, Resp};
use workflow::{Broker, Delivery, Message, NodeState, Settlement, Workflow, WorkflowState};

/// A small deterministic PRNG, so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Tree {
    Step(u32),
    Chain(Vec<Tree>),
    Group(Vec<Tree>),
    Delay(u64, Box<Tree>),
}

fn gen(rng: &mut Rng, depth: u32, budget: &mut u32, next: &mut u32) -> Tree {
    if depth >= 5 || *budget <= 1 || rng.below(3) == 0 {
        *budget = budget.saturating_sub(1);
        *next += 1;
        return Tree::Step(*next - 1);
    }
    match rng.below(5) {
        0 => Tree::Delay(rng.below(3), Box::new(gen(rng, depth + 1, budget, next))),
        k => {
            let n = if k == 1 {
                rng.below(3)
            } else {
                1 + rng.below(5)
            };
            let children = (0..n).map(|_| gen(rng, depth + 1, budget, next)).collect();
            if k % 2 == 0 {
                Tree::Chain(children)
            } else {
                Tree::Group(children)
            }
        }
    }
}

fn to_workflow(t: &Tree) -> Workflow {
    match t {
        Tree::Step(n) => Workflow::message(Message::new("rq", format!("t{n}"), vec![])),
        Tree::Chain(cs) => Workflow::chain(cs.iter().map(to_workflow)),
        Tree::Group(cs) => Workflow::group(cs.iter().map(to_workflow)),
        Tree::Delay(ms, t) => Workflow::delay(Duration::from_millis(*ms), to_workflow(t)),
    }
}

fn steps(t: &Tree, out: &mut Vec<u32>) {
    match t {
        Tree::Step(n) => out.push(*n),
        Tree::Chain(cs) | Tree::Group(cs) => cs.iter().for_each(|c| steps(c, out)),
        Tree::Delay(_, t) => steps(t, out),
    }
}

fn predecessors(t: &Tree, before: &BTreeSet<u32>, out: &mut HashMap<u32, BTreeSet<u32>>) {
    match t {
        Tree::Step(n) => {
            out.insert(*n, before.clone());
        }
        Tree::Delay(_, t) => predecessors(t, before, out),
        Tree::Group(cs) => cs.iter().for_each(|c| predecessors(c, before, out)),
        Tree::Chain(cs) => {
            let mut before = before.clone();
            for c in cs {
                predecessors(c, &before, out);
                let mut s = Vec::new();
                steps(c, &mut s);
                before.extend(s);
            }
        }
    }
}

fn label(m: &Message) -> Option<u32> {
    m.actor_name.strip_prefix('t').map(|n| n.parse().unwrap())
}

/// Everything ready or delayed, on the steps' queue and the no-op's (`default`).
async fn fetch_all(b: &impl Broker) -> Vec<(Delivery, Message)> {
    let mut out = Vec::new();
    for q in ["rq", "rq.DQ", "default", "default.DQ"] {
        for d in b.fetch(q, 1000).await.unwrap() {
            let m = Message::decode(&d.payload).unwrap();
            out.push((d, m));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_workflows_start_every_step_once_in_order_on_redis() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    for seed in 1..=120u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut budget, mut next) = (60, 0);
        let tree = gen(&mut rng, 0, &mut budget, &mut next);
        let mut all = Vec::new();
        steps(&tree, &mut all);
        let mut preds = HashMap::new();
        predecessors(&tree, &BTreeSet::new(), &mut preds);

        let plan = to_workflow(&tree).plan().unwrap();
        let (id, joins, nodes) = (plan.id.clone(), plan.joins.len(), plan.len());
        b.submit_workflow(plan).await.unwrap();
        let (mut done, mut started) = (BTreeSet::new(), BTreeSet::new());
        let mut pool: Vec<(Delivery, Message)> = Vec::new();
        loop {
            // Everything a settlement started is fetched before the next one.
            for (d, m) in fetch_all(&b).await {
                if let Some(l) = label(&m) {
                    assert!(started.insert(l), "seed {seed}: step {l} started twice");
                    let missing: Vec<_> = preds[&l].difference(&done).collect();
                    assert!(
                        missing.is_empty(),
                        "seed {seed}: step {l} started before {missing:?}"
                    );
                }
                pool.push((d, m));
            }
            if pool.is_empty() {
                break;
            }
            let (d, m) = pool.swap_remove(rng.below(pool.len() as u64) as usize);
            let c = Settlement::Complete {
                queue: d.queue.clone(),
                receipt: d.receipt.clone(),
                workflow: m.workflow().unwrap(),
            };
            // Sometimes the completion is redelivered, in the same batch or a later one.
            match rng.below(4) {
                0 => b.settle(&[c.clone(), c]).await.unwrap(),
                1 => {
                    b.settle(std::slice::from_ref(&c)).await.unwrap();
                    b.settle(&[c]).await.unwrap()
                }
                _ => b.settle(&[c]).await.unwrap(),
            };
            done.extend(label(&m));
        }
        assert_eq!(done.len(), all.len(), "seed {seed}: every step ran");
        let st = b.workflow_status(&id).await.unwrap();
        assert_eq!(st.state, WorkflowState::Succeeded, "seed {seed}");
        assert_eq!(st.count(NodeState::Done), nodes, "seed {seed}");
        let key = format!("{}:wf:{{{id}}}", b.namespace());
        for j in 0..joins {
            let left = r.cmd(&["HGET", &key, &format!("j{j}")]).int();
            assert_eq!(left, 0, "seed {seed}: join {j} ends at {left}");
        }
    }
    for q in ["rq", "default"] {
        assert_eq!(b.queue_stats(q).await.unwrap(), Default::default());
    }
}
