//! The workflow engine's transitions, driven directly and through the in-memory broker.

mod support;

use std::collections::BTreeSet;

use std::time::Duration;
use support::trees::{label, Rng, Tree};

use workflow::broker::Next;
use workflow::{
    Broker, Chain, Group, MemoryBroker, Message, NodeState, Settlement, Workflow, WorkflowState,
};
use workflow_runtime::engine::State;

fn step(name: &str) -> Workflow {
    Workflow::message(Message::new("q", name, vec![]))
}

#[test]
fn random_trees_complete_every_step_once_in_order() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let tree = Tree::random(&mut rng, 200);
        let mut all = Vec::new();
        tree.steps(&mut all);
        let preds = tree.predecessors();

        let plan = tree.workflow("q").plan().unwrap();
        let noops = plan
            .tasks
            .iter()
            .filter(|t| t.message.actor_name == "workflow_noop")
            .count();
        assert_eq!(
            plan.len(),
            all.len() + noops,
            "seed {seed}: one task per step"
        );
        let (mut state, fx) = State::submit(plan);
        let mut queued: Vec<Message> = fx.enqueue.into_iter().map(|(m, _)| m).collect();
        let mut done = BTreeSet::new();
        let mut started = BTreeSet::new();
        for m in &queued {
            assert!(label(m).is_none_or(|l| started.insert(l)));
        }
        while !queued.is_empty() {
            let m = queued.swap_remove(rng.below(queued.len() as u64) as usize);
            let node = m.workflow().unwrap().node;
            done.extend(label(&m));
            let mut fx = state.complete(node);
            // A redelivered completion changes nothing.
            if rng.below(4) == 0 {
                let again = state.complete(node);
                assert!(again.enqueue.is_empty() && !again.finished, "seed {seed}");
            }
            for (m, _) in fx.enqueue.drain(..) {
                let Some(l) = label(&m) else {
                    queued.push(m);
                    continue;
                };
                assert!(started.insert(l), "seed {seed}: step {l} started twice");
                let missing: Vec<_> = preds[&l].difference(&done).collect();
                assert!(
                    missing.is_empty(),
                    "seed {seed}: step {l} started before {missing:?}"
                );
                queued.push(m);
            }
        }
        assert_eq!(done.len(), all.len(), "seed {seed}: every step ran");
        assert_eq!(state.state(), WorkflowState::Succeeded, "seed {seed}");
    }
}

#[test]
fn the_seed_shape_flattens_into_joins_and_start_sets() {
    let wf: Workflow = Chain::new()
        .then(step("task1"))
        .then(
            Group::new()
                .with(Chain::new().then(step("task2")).then(step("task5")))
                .with(step("task3"))
                .with(
                    Chain::new()
                        .then(step("task4"))
                        .then(Group::new().with(step("task6")).with(step("task7"))),
                ),
        )
        .then(step("task8"))
        .into();
    let plan = wf.plan().unwrap();
    let names: Vec<_> = plan
        .tasks
        .iter()
        .map(|t| t.message.actor_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["task1", "task2", "task5", "task3", "task4", "task6", "task7", "task8"]
    );
    let by_name = |n: &str| {
        plan.tasks
            .iter()
            .position(|t| t.message.actor_name == n)
            .unwrap() as u32
    };
    assert_eq!(plan.entry, vec![by_name("task1")]);
    assert_eq!(plan.joins.len(), 2, "the outer group and the inner group");
    let outer = plan.joins.iter().position(|j| j.count == 3).unwrap() as u32;
    let inner = plan.joins.iter().position(|j| j.count == 2).unwrap() as u32;
    assert_eq!(
        plan.tasks[by_name("task5") as usize].next,
        Next::Join(outer)
    );
    assert_eq!(
        plan.tasks[by_name("task3") as usize].next,
        Next::Join(outer)
    );
    assert_eq!(
        plan.tasks[by_name("task6") as usize].next,
        Next::Join(inner)
    );
    assert_eq!(plan.joins[inner as usize].next, Next::Join(outer));
    assert_eq!(plan.tasks[by_name("task8") as usize].next, Next::End);
    let Next::Start(s) = plan.tasks[by_name("task1") as usize].next else {
        panic!()
    };
    let mut first: Vec<_> = plan.starts[s as usize].clone();
    first.sort();
    let mut expect = vec![by_name("task2"), by_name("task3"), by_name("task4")];
    expect.sort();
    assert_eq!(first, expect);
}

/// Fetches every ready message of queue `q`.
async fn fetch_all(broker: &MemoryBroker, q: &str) -> Vec<(workflow::Delivery, Message)> {
    let ds = broker.fetch(q, 1000).await.unwrap();
    ds.into_iter()
        .map(|d| {
            let m = Message::decode(&d.payload).unwrap();
            (d, m)
        })
        .collect()
}

fn complete(d: &workflow::Delivery, m: &Message) -> Settlement {
    Settlement::Complete {
        queue: d.queue.clone(),
        receipt: d.receipt.clone(),
        workflow: m.workflow().unwrap(),
    }
}

#[tokio::test]
async fn a_redelivered_completion_advances_once() {
    let broker = MemoryBroker::new();
    let wf = Workflow::chain([
        step("a"),
        Workflow::group([step("b"), step("c")]),
        step("d"),
    ]);
    let handle = wf.run(&broker).await.unwrap();
    let a = fetch_all(&broker, "q").await;
    assert_eq!(a.len(), 1);
    // The same completion settled twice (a worker that crashed before its ack was recorded).
    broker
        .settle(&[complete(&a[0].0, &a[0].1), complete(&a[0].0, &a[0].1)])
        .await
        .unwrap();
    let bc = fetch_all(&broker, "q").await;
    assert_eq!(bc.len(), 2, "b and c start once");
    broker
        .settle(&[complete(&bc[0].0, &bc[0].1)])
        .await
        .unwrap();
    broker
        .settle(&[complete(&bc[0].0, &bc[0].1)])
        .await
        .unwrap();
    assert!(
        fetch_all(&broker, "q").await.is_empty(),
        "b twice does not release the group"
    );
    broker
        .settle(&[complete(&bc[1].0, &bc[1].1)])
        .await
        .unwrap();
    let d = fetch_all(&broker, "q").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1.actor_name, "d");
    broker.settle(&[complete(&d[0].0, &d[0].1)]).await.unwrap();
    let status = handle.status().await.unwrap();
    assert_eq!(status.state, WorkflowState::Succeeded);
    assert_eq!(status.count(NodeState::Done), 4);
    broker.join(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_failed_node_stops_the_workflow_and_skips_queued_siblings() {
    let broker = MemoryBroker::new();
    let alert = Message::new("alerts", "alert", vec![]);
    let wf = Workflow::chain([
        Workflow::group([step("a"), step("b"), step("c")]),
        step("d"),
    ])
    .on_failure(Workflow::message(alert));
    let handle = wf.run(&broker).await.unwrap();
    let first = broker.fetch("q", 1).await.unwrap().remove(0);
    let m = Message::decode(&first.payload).unwrap();
    broker
        .settle(&[Settlement::DeadLetter {
            queue: first.queue.clone(),
            receipt: first.receipt.clone(),
            reason: "boom".into(),
            workflow: m.workflow(),
        }])
        .await
        .unwrap();
    // The two siblings still queued are skipped: nothing is left to fetch on `q`.
    assert!(broker.fetch("q", 10).await.unwrap().is_empty());
    let status = handle.status().await.unwrap();
    assert_eq!(status.state, WorkflowState::Failed);
    let failure = status.failure.clone().unwrap();
    assert_eq!(
        (failure.node, failure.actor.as_str(), failure.error.as_str()),
        (0, "a", "boom")
    );
    assert_eq!(status.nodes[0].state, NodeState::Failed);
    assert_eq!(
        status.count(NodeState::Skipped),
        3,
        "b, c (queued) and d (waiting)"
    );
    // The failure handler is enqueued exactly once and knows what failed.
    let alerts = broker.fetch("alerts", 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    let alert = Message::decode(&alerts[0].payload).unwrap();
    assert_eq!(alert.options["workflow_failure"]["error"], "boom");
    assert_eq!(alert.options["workflow_failure"]["node"], 0);
    match handle.wait_timeout(Duration::from_secs(1)).await {
        Err(workflow::Error::WorkflowFailed { node: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cancel_skips_queued_tasks_and_starts_nothing() {
    let broker = MemoryBroker::new();
    let wf = Workflow::chain([Workflow::group([step("a"), step("b")]), step("c")]);
    let handle = wf.run(&broker).await.unwrap();
    let a = broker.fetch("q", 1).await.unwrap().remove(0);
    assert!(handle.cancel().await.unwrap());
    assert!(
        !handle.cancel().await.unwrap(),
        "a second cancel changes nothing"
    );
    let m = Message::decode(&a.payload).unwrap();
    // The task that was already running completes, but nothing starts after it.
    broker.settle(&[complete(&a, &m)]).await.unwrap();
    assert!(broker.fetch("q", 10).await.unwrap().is_empty());
    let status = handle.status().await.unwrap();
    assert_eq!(status.state, WorkflowState::Cancelled);
    assert_eq!(
        status.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [NodeState::Done, NodeState::Skipped, NodeState::Skipped]
    );
    assert!(matches!(
        handle.wait().await,
        Err(workflow::Error::WorkflowCancelled(_))
    ));
    broker.join(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn empty_workflows_and_empty_fan_outs_complete_at_once() {
    let broker = MemoryBroker::new();
    let handle = Workflow::group(Vec::<Workflow>::new())
        .run(&broker)
        .await
        .unwrap();
    assert_eq!(
        handle.status().await.unwrap().state,
        WorkflowState::Succeeded
    );
    let wf = Workflow::chain([
        step("a"),
        Workflow::group(Vec::<Workflow>::new()),
        step("b"),
    ]);
    let plan = wf.plan().unwrap();
    assert_eq!(plan.len(), 2);
    assert_eq!(plan.tasks[0].next, Next::Start(0));
    assert_eq!(plan.starts[0], vec![1]);
}

#[test]
fn node_messages_do_not_grow_with_the_workflow() {
    let size = |n: usize| {
        let wf = Workflow::chain([
            Workflow::group((0..n).map(|i| step(&format!("t{}", i % 10)))),
            step("end"),
        ]);
        let plan = wf
            .plan_with_id("00000000-0000-0000-0000-000000000000".into())
            .unwrap();
        plan.tasks[0].message.encode().len() as i64 - plan.tasks[0].message.message_id.len() as i64
    };
    let (small, big) = (size(2), size(1000));
    assert!(
        (big - small).abs() <= 3,
        "2 members: {small} bytes, 1000 members: {big} bytes"
    );
}

#[test]
fn the_no_op_of_a_delayed_empty_group_goes_to_a_queue_of_the_workflow() {
    let wf = Workflow::chain([
        Workflow::message(Message::new("images", "a", vec![])),
        Workflow::delay(
            Duration::from_secs(1),
            Workflow::group(Vec::<Workflow>::new()),
        ),
        Workflow::message(Message::new("mail", "b", vec![])),
    ]);
    let plan = wf.plan().unwrap();
    let queues: Vec<_> = plan
        .tasks
        .iter()
        .map(|t| (t.message.actor_name.as_str(), t.message.queue_name.as_str()))
        .collect();
    assert_eq!(
        queues,
        [("a", "images"), ("workflow_noop", "mail"), ("b", "mail")]
    );
    assert_eq!(plan.tasks[1].delay, Some(Duration::from_secs(1)));
}
