//! The Lua workflow engine against the reference semantics (`workflow/engine.rs`): random
//! workflows, completed in random order with redelivered completions, start every step once,
//! never before its predecessors, and succeed.

mod support;

use std::collections::BTreeSet;

use support::trees::{label, Rng, Tree};
use support::{broker, redis_url, Cleanup, Resp};
use workflow::{Broker, Delivery, Message, NodeState, Settlement, WorkflowState};

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
        let tree = Tree::random(&mut rng, 60);
        let mut all = Vec::new();
        tree.steps(&mut all);
        let preds = tree.predecessors();

        let plan = tree.workflow("rq").plan().unwrap();
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
