//! Random nested workflows, with what each step must wait for: the property tests of the
//! engine (in memory and in Lua) check every run against them.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use workflow::{Message, Workflow};

/// A small deterministic PRNG, so failures reproduce from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random workflow shape; step `n` is the actor `t<n>`.
pub enum Tree {
    Step(u32),
    Chain(Vec<Tree>),
    Group(Vec<Tree>),
    Delay(u64, Box<Tree>),
}

impl Tree {
    /// A random tree of depth at most 5 and about `budget` steps, with empty groups (a
    /// run-time fan-out over nothing) and delays of 0 to 2 ms.
    pub fn random(rng: &mut Rng, budget: u32) -> Tree {
        let (mut budget, mut next) = (budget, 0);
        gen(rng, 0, &mut budget, &mut next)
    }

    /// The workflow of this shape, its steps on `queue`.
    pub fn workflow(&self, queue: &str) -> Workflow {
        match self {
            Tree::Step(n) => Workflow::message(Message::new(queue, format!("t{n}"), vec![])),
            Tree::Chain(cs) => Workflow::chain(cs.iter().map(|c| c.workflow(queue))),
            Tree::Group(cs) => Workflow::group(cs.iter().map(|c| c.workflow(queue))),
            Tree::Delay(ms, t) => Workflow::delay(Duration::from_millis(*ms), t.workflow(queue)),
        }
    }

    /// Every step.
    pub fn steps(&self, out: &mut Vec<u32>) {
        match self {
            Tree::Step(n) => out.push(*n),
            Tree::Chain(cs) | Tree::Group(cs) => cs.iter().for_each(|c| c.steps(out)),
            Tree::Delay(_, t) => t.steps(out),
        }
    }

    /// For each step, the steps that must have finished before it starts.
    pub fn predecessors(&self) -> HashMap<u32, BTreeSet<u32>> {
        let mut out = HashMap::new();
        self.collect_predecessors(&BTreeSet::new(), &mut out);
        out
    }

    fn collect_predecessors(&self, before: &BTreeSet<u32>, out: &mut HashMap<u32, BTreeSet<u32>>) {
        match self {
            Tree::Step(n) => {
                out.insert(*n, before.clone());
            }
            Tree::Delay(_, t) => t.collect_predecessors(before, out),
            Tree::Group(cs) => cs.iter().for_each(|c| c.collect_predecessors(before, out)),
            Tree::Chain(cs) => {
                let mut before = before.clone();
                for c in cs {
                    c.collect_predecessors(&before, out);
                    let mut s = Vec::new();
                    c.steps(&mut s);
                    before.extend(s);
                }
            }
        }
    }
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
            // Groups may be empty (a run-time fan-out over nothing); chains of one are fine.
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

/// The step number of a message; `None` for the no-op that keeps the delay of an empty group.
pub fn label(m: &Message) -> Option<u32> {
    m.actor_name.strip_prefix('t').map(|n| n.parse().unwrap())
}
