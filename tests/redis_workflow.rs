//! Workflows on Redis: they run in order, advance exactly once per node however often a node
//! is completed, fail and cancel cleanly, expire once finished, and stay small.

mod support;

use std::time::Duration;

use serde_json::json;
use support::log::{names, pos, ran, record};
use support::{broker, eventually, redis_url, start, worker, Cleanup, Resp};
use workflow::prelude::*;
use workflow::{
    Chain, Delivery, Error, Group, Message, NodeState, RedisBroker, Room, Settlement, Workflow,
    WorkflowState,
};

const T: Duration = Duration::from_secs(20);

#[actor(queue = "rwf")]
async fn step(tag: String, name: String) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    record(&tag, name);
}

#[actor(queue = "rwf", max_retries = 0)]
async fn boom(tag: String) -> Result<(), String> {
    record(&tag, "boom".into());
    Err("boom: the disk is on fire".into())
}

#[actor(queue = "rwf_handlers")]
async fn handler(tag: String, name: String) {
    record(&tag, name);
}

/// A raw workflow step (for tests that fetch and settle by hand).
fn raw(queue: &str, actor: &str) -> Workflow {
    Workflow::message(Message::new(queue, actor, vec![json!(actor)]))
}

fn wf_key(b: &RedisBroker, id: &str) -> String {
    format!("{}:wf:{{{id}}}", b.namespace())
}

fn complete(d: &Delivery) -> Settlement {
    let m = Message::decode(&d.payload).unwrap();
    Settlement::Complete {
        queue: d.queue.clone(),
        receipt: d.receipt.clone(),
        workflow: m.workflow().unwrap(),
    }
}

fn actors(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| Message::decode(&d.payload).unwrap().actor_name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_runs_in_order_and_its_success_handler_once() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let tag = b.namespace().to_owned();
    let s = |n: &str| step::message(tag.clone(), n.to_owned());
    let wf = Workflow::from(
        Chain::new()
            .then(s("a"))
            .then(Group::new().with(s("b")).with(s("c")))
            .then(s("d")),
    )
    .on_success(handler::message(tag.clone(), "on_success".into()));
    let w = start(worker(b.clone(), &["rwf", "rwf_handlers"]));
    let handle = wf.run(&b).await.unwrap();
    let status = handle.wait_timeout(T).await.unwrap();
    assert_eq!(status.state, WorkflowState::Succeeded);
    assert_eq!(status.count(NodeState::Done), 4);
    assert_eq!(
        status
            .nodes
            .iter()
            .map(|n| n.actor.as_str())
            .collect::<Vec<_>>(),
        ["step"; 4]
    );
    eventually(T, "the success handler", || async {
        names(&tag).contains(&"on_success".to_owned())
    })
    .await;
    w.stop().await;
    let order = names(&tag);
    assert_eq!(order.len(), 5, "{order:?}");
    assert!(pos(&order, "a") < pos(&order, "b") && pos(&order, "a") < pos(&order, "c"));
    assert!(pos(&order, "b") < pos(&order, "d") && pos(&order, "c") < pos(&order, "d"));
    assert_eq!(pos(&order, "on_success"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_workflow_runs_in_an_order_its_shape_allows() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let tag = b.namespace().to_owned();
    let s = |n: &str| Workflow::from(step::message(tag.clone(), n.to_owned()));
    // chain(task1, group(chain(task2, task5), task3, chain(task4, group(task6, task7))), task8)
    let wf = Workflow::chain([
        s("task1"),
        Workflow::group([
            Workflow::chain([s("task2"), s("task5")]),
            s("task3"),
            Workflow::chain([s("task4"), Workflow::group([s("task6"), s("task7")])]),
        ]),
        s("task8"),
    ]);
    let w = start(worker(b.clone(), &["rwf"]).concurrency(4));
    let st = wf.run(&b).await.unwrap().wait_timeout(T).await.unwrap();
    w.stop().await;
    assert_eq!(st.count(NodeState::Done), 8);
    let order = names(&tag);
    assert_eq!(order.len(), 8, "{order:?}");
    let p = |n: &str| pos(&order, n);
    for t in ["task2", "task3", "task4"] {
        assert!(p("task1") < p(t), "{order:?}");
    }
    assert!(p("task2") < p("task5") && p("task4") < p("task6") && p("task4") < p("task7"));
    for t in ["task5", "task3", "task6", "task7"] {
        assert!(p(t) < p("task8"), "{order:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_workflow_succeeds_at_once() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let h = Workflow::from(Group::new())
        .on_success(raw("rwe", "done"))
        .run(&b)
        .await
        .unwrap();
    let st = h.status().await.unwrap();
    assert_eq!((st.state, st.nodes.len()), (WorkflowState::Succeeded, 0));
    assert_eq!(actors(&b.fetch("rwe", 10).await.unwrap()), ["done"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_step_starts_no_earlier_than_its_delay_after_its_predecessor() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let tag = b.namespace().to_owned();
    let delay = Duration::from_millis(800);
    let wf = Workflow::from(
        Chain::new()
            .then(step::message(tag.clone(), "first".into()))
            .then(Workflow::delay(
                delay,
                step::message(tag.clone(), "later".into()),
            )),
    );
    let w = start(worker(b.clone(), &["rwf"]));
    wf.run(&b).await.unwrap().wait_timeout(T).await.unwrap();
    w.stop().await;
    let order = ran(&tag);
    assert_eq!(
        order.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>(),
        ["first", "later"]
    );
    let gap = order[1].1 - order[0].1;
    assert!(
        gap >= delay,
        "started {gap:?} after its predecessor, before its delay {delay:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_node_twice_advances_the_workflow_once() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    let wf = Workflow::from(
        Chain::new()
            .then(Group::new().with(raw("rwr", "a1")).with(raw("rwr", "a2")))
            .then(raw("rwr", "c")),
    )
    .on_success(raw("rwr_done", "done"));
    let h = wf.run(&b).await.unwrap();
    let key = wf_key(&b, h.id());
    let got = b.fetch("rwr", 10).await.unwrap();
    assert_eq!(actors(&got), ["a1", "a2"]);
    let st = h.status().await.unwrap();
    assert_eq!(
        st.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [NodeState::Running, NodeState::Running, NodeState::Waiting]
    );

    // a1 completes three times: twice in one batch, once more in a re-sent batch.
    b.settle(&[complete(&got[0]), complete(&got[0])])
        .await
        .unwrap();
    b.settle(&[complete(&got[0])]).await.unwrap();
    assert_eq!(
        r.cmd(&["HGET", &key, "j0"]).int(),
        1,
        "the group's join counted a1 once"
    );
    assert_eq!(
        b.queue_stats("rwr").await.unwrap().ready,
        0,
        "c waits for a2"
    );
    let st = h.status().await.unwrap();
    assert_eq!(
        st.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [NodeState::Done, NodeState::Running, NodeState::Waiting]
    );

    b.settle(&[complete(&got[1])]).await.unwrap();
    b.settle(&[complete(&got[1])]).await.unwrap();
    assert_eq!(r.cmd(&["HGET", &key, "j0"]).int(), 0);
    assert_eq!(
        r.cmd(&["LLEN", &format!("{}:rwr", b.namespace())]).int(),
        1,
        "c started once"
    );
    assert_eq!(h.status().await.unwrap().nodes[2].state, NodeState::Queued);

    let c = b.fetch("rwr", 10).await.unwrap();
    assert_eq!(actors(&c), ["c"]);
    b.settle(&[complete(&c[0]), complete(&c[0])]).await.unwrap();
    b.settle(&[complete(&c[0])]).await.unwrap();
    let st = h.status().await.unwrap();
    assert_eq!(st.state, WorkflowState::Succeeded);
    assert_eq!(st.count(NodeState::Done), 3);
    assert_eq!(
        r.cmd(&["LLEN", &format!("{}:rwr_done", b.namespace())])
            .int(),
        1,
        "one success handler"
    );
    // A redelivered copy of a node that is done changes nothing either.
    b.settle(&[complete(&got[0]), complete(&got[1])])
        .await
        .unwrap();
    assert_eq!(
        r.cmd(&["LLEN", &format!("{}:rwr_done", b.namespace())])
            .int(),
        1
    );
    assert_eq!(b.queue_stats("rwr").await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_group_runs_the_failure_handler_once_and_skips_the_rest() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let group = Group::new()
        .with(raw("rwx", "f"))
        .with(raw("rwx", "b1"))
        .with(raw("rwx", "b2"))
        .with(raw("rwx", "b3"));
    let wf = Workflow::from(Chain::new().then(group).then(raw("rwx", "after")))
        .on_failure(raw("rwx_failed", "handler"));
    let h = wf.run(&b).await.unwrap();
    let got = b.fetch("rwx", 2).await.unwrap();
    assert_eq!(actors(&got), ["f", "b1"]);
    let f = Message::decode(&got[0].payload)
        .unwrap()
        .workflow()
        .unwrap();
    let dead = Settlement::DeadLetter {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
        reason: "f: retries exhausted".into(),
        workflow: Some(f.clone()),
    };
    b.settle(std::slice::from_ref(&dead)).await.unwrap();
    b.settle(&[dead]).await.unwrap();

    let st = h.status().await.unwrap();
    assert_eq!(st.state, WorkflowState::Failed);
    use NodeState::*;
    assert_eq!(
        st.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [Failed, Running, Skipped, Skipped, Skipped]
    );
    let failure = st.failure.unwrap();
    assert_eq!(
        (failure.node, failure.actor.as_str(), failure.error.as_str()),
        (0, "f", "f: retries exhausted")
    );
    assert!(matches!(
        h.wait_timeout(T).await,
        Err(Error::WorkflowFailed { node: 0, .. })
    ));

    // The handler is enqueued once, with the failure in its options.
    let handlers = b.fetch("rwx_failed", 10).await.unwrap();
    assert_eq!(handlers.len(), 1);
    let m = Message::decode(&handlers[0].payload).unwrap();
    assert_eq!(
        m.options["workflow_failure"],
        json!({"id": h.id(), "node": 0, "actor": "f", "error": "f: retries exhausted"})
    );
    // The queued siblings vanished; the dead node is in the dead-letter queue.
    assert!(b.fetch("rwx", 10).await.unwrap().is_empty());
    assert_eq!(r.cmd(&["ZCARD", &format!("{ns}:rwx.XQ")]).int(), 1);
    // The sibling that was running completes, but nothing starts any more.
    b.settle(&[complete(&got[1])]).await.unwrap();
    let st = h.status().await.unwrap();
    assert_eq!(
        st.nodes.iter().map(|n| n.state).collect::<Vec<_>>(),
        [Failed, Done, Skipped, Skipped, Skipped]
    );
    let s = b.queue_stats("rwx").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (0, 0, 0, 1));
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rwx.msgs")]).int(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_stops_its_workflow_on_a_worker() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let tag = b.namespace().to_owned();
    let s = |n: &str| Workflow::from(step::message(tag.clone(), n.to_owned()));
    let group = Group::new()
        .with(boom::message(tag.clone()))
        .with(s("sibling"));
    let wf = Workflow::from(Chain::new().then(s("first")).then(group).then(s("never")))
        .on_failure(handler::message(tag.clone(), "on_failure".into()))
        .on_success(handler::message(tag.clone(), "on_success".into()));
    let w = start(worker(b.clone(), &["rwf", "rwf_handlers"]));
    let h = wf.run(&b).await.unwrap();
    match h.wait_timeout(T).await {
        Err(Error::WorkflowFailed {
            node, actor, error, ..
        }) => {
            assert_eq!((node, actor.as_str()), (1, "boom"));
            assert!(error.contains("boom: the disk is on fire"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    eventually(T, "the failure handler", || async {
        names(&tag).contains(&"on_failure".to_owned())
    })
    .await;
    w.stop().await;
    let order = names(&tag);
    assert_eq!(order.iter().filter(|n| *n == "on_failure").count(), 1);
    assert!(
        !order.contains(&"never".to_owned()) && !order.contains(&"on_success".to_owned()),
        "{order:?}"
    );
    let st = h.status().await.unwrap();
    assert_eq!(st.nodes[1].state, NodeState::Failed);
    assert_eq!(st.nodes[3].state, NodeState::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_skips_queued_tasks_and_says_whether_it_stopped_anything() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let wf = Workflow::from(
        Chain::new()
            .then(Group::new().with(raw("rwc", "a")).with(raw("rwc", "b")))
            .then(raw("rwc", "c")),
    )
    .on_failure(raw("rwc", "handler"));
    let h = wf.run(&b).await.unwrap();
    assert_eq!(b.queue_stats("rwc").await.unwrap().ready, 2);
    let running = b.fetch("rwc", 1).await.unwrap();
    assert!(h.cancel().await.unwrap());
    assert!(!h.cancel().await.unwrap(), "already finished");
    let st = h.status().await.unwrap();
    assert_eq!(st.state, WorkflowState::Cancelled);
    use NodeState::*;
    let states =
        |st: &workflow::WorkflowStatus| st.nodes.iter().map(|n| n.state).collect::<Vec<_>>();
    assert_eq!(states(&st), [Running, Skipped, Skipped]);
    assert!(st.failure.is_none());
    assert!(matches!(
        h.wait_timeout(T).await,
        Err(Error::WorkflowCancelled(_))
    ));
    assert!(
        b.fetch("rwc", 10).await.unwrap().is_empty(),
        "queued tasks vanish; no failure handler"
    );
    // The task that was running fails and would be retried: its retry never starts.
    b.settle(&[Settlement::Replace {
        queue: running[0].queue.clone(),
        receipt: running[0].receipt.clone(),
        message: Message::decode(&running[0].payload).unwrap(),
        delay: Some(Duration::from_millis(1)),
    }])
    .await
    .unwrap();
    assert_eq!(
        states(&h.status().await.unwrap()),
        [Skipped, Skipped, Skipped]
    );
    assert_eq!(b.queue_stats("rwc").await.unwrap(), Default::default());

    assert!(matches!(
        b.workflow_status("no-such-workflow").await,
        Err(Error::UnknownWorkflow(_))
    ));
    assert!(matches!(
        b.cancel_workflow("no-such-workflow").await,
        Err(Error::UnknownWorkflow(_))
    ));
    assert!(matches!(
        b.workflow_status("{bad id}").await,
        Err(Error::UnknownWorkflow(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_workflows_expire_after_their_retention_running_ones_never() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    let wf = Workflow::from(Chain::new().then(raw("rwt", "a")).then(raw("rwt", "b")))
        .retention(Duration::from_secs(120));
    let h = wf.run(&b).await.unwrap();
    let key = wf_key(&b, h.id());
    assert_eq!(
        r.cmd(&["PTTL", &key]).int(),
        -1,
        "a running workflow never expires"
    );
    for _ in 0..2 {
        let d = b.fetch("rwt", 1).await.unwrap();
        assert_eq!(r.cmd(&["PTTL", &key]).int(), -1);
        b.settle(&[complete(&d[0])]).await.unwrap();
    }
    assert_eq!(h.status().await.unwrap().state, WorkflowState::Succeeded);
    let ttl = r.cmd(&["PTTL", &key]).int();
    assert!(ttl > 110_000 && ttl <= 120_000, "PTTL {ttl}");
    assert_eq!(
        r.keys(&format!("{}:wf:*", b.namespace())),
        std::slice::from_ref(&key),
        "one key per workflow"
    );

    // The broker's retention caps the workflow's; an expired workflow is unknown.
    let capped = RedisBroker::builder(redis_url())
        .namespace(b.namespace())
        .retention(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let h = raw("rwt", "a").run(&capped).await.unwrap();
    let d = capped.fetch("rwt", 1).await.unwrap();
    capped.settle(&[complete(&d[0])]).await.unwrap();
    let ttl = r.cmd(&["PTTL", &wf_key(&b, h.id())]).int();
    assert!(ttl > 0 && ttl <= 300, "PTTL {ttl}");
    eventually(T, "the state to expire", || async {
        matches!(h.status().await, Err(Error::UnknownWorkflow(_)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_of_a_big_workflow_stays_small() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let members = |actor: &str| -> Group {
        (0..1000)
            .map(|i| Workflow::message(Message::new("rws", actor, vec![json!(i)])))
            .collect()
    };
    let wf = Workflow::from(
        Chain::new()
            .then(members("x"))
            .then(members("y"))
            .then(raw("rws", "t")),
    );
    let h = wf.run(&b).await.unwrap();
    let memory = |r: &mut Resp| -> i64 {
        r.keys(&format!("{ns}:*"))
            .iter()
            .map(|k| r.cmd(&["MEMORY", "USAGE", k, "SAMPLES", "0"]).int())
            .sum()
    };
    let ids = r.cmd(&["LRANGE", &format!("{ns}:rws"), "0", "-1"]).texts();
    assert_eq!(ids.len(), 1000);
    let largest = ids
        .iter()
        .map(|id| r.cmd(&["HGET", &format!("{ns}:rws.msgs"), id]).text().len())
        .max()
        .unwrap();
    assert!(
        largest < 1024,
        "a node message of a 1000-member group takes {largest} bytes"
    );
    let at_submit = memory(&mut r);

    // Complete the first group in one batch: the second group starts.
    let mut got = Vec::new();
    while got.len() < 1000 {
        got.extend(b.fetch("rws", 1000).await.unwrap());
    }
    b.settle(&got.iter().map(complete).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(b.queue_stats("rws").await.unwrap().ready, 1000);
    let st = h.status().await.unwrap();
    assert_eq!(
        (st.count(NodeState::Done), st.count(NodeState::Queued)),
        (1000, 1000)
    );
    let mid_way = memory(&mut r);
    eprintln!("Chain(Group(1000), Group(1000), t): {largest} B per message, {at_submit} B in Redis after submit, {mid_way} B after the first group");
    assert!(
        at_submit < 2 << 20 && mid_way < 2 << 20,
        "{at_submit} B, {mid_way} B"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_too_big_for_one_call_is_uploaded_in_chunks() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let filler = "x".repeat(400);
    let group: Group = (0..15_000)
        .map(|i| Workflow::message(Message::new("rwb", "big", vec![json!(i), json!(filler)])))
        .collect();
    let h = Workflow::from(Chain::new().then(group).then(raw("rwb", "end")))
        .run(&b)
        .await
        .unwrap();
    let st = h.status().await.unwrap();
    assert_eq!(
        (
            st.state,
            st.count(NodeState::Queued),
            st.count(NodeState::Waiting)
        ),
        (WorkflowState::Running, 15_000, 1)
    );
    assert_eq!(b.queue_stats("rwb").await.unwrap().ready, 15_000);
    let mut r = Resp::connect(&redis_url());
    assert!(r
        .keys(&format!("{}:wf:*:staging", b.namespace()))
        .is_empty());
    assert!(h.cancel().await.unwrap());
    assert_eq!(b.queue_stats("rwb").await.unwrap().ready, 0);
    assert_eq!(h.status().await.unwrap().count(NodeState::Skipped), 15_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_node_can_still_be_skipped_and_unknown_ids_are_refused() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let h = Workflow::from(Group::new().with(raw("rwq", "a")).with(raw("rwq", "b")))
        .run(&b)
        .await
        .unwrap();
    let got = b.fetch("rwq", 1).await.unwrap();
    // a fails and is retried later: its retry waits on the delay queue.
    let mut retry = Message::decode(&got[0].payload).unwrap();
    retry.options.insert("retries".into(), json!(1));
    b.settle(&[Settlement::Replace {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
        message: retry,
        delay: Some(Duration::from_secs(60)),
    }])
    .await
    .unwrap();
    let s = b.queue_stats("rwq").await.unwrap();
    assert_eq!((s.ready, s.delayed), (1, 1));
    assert_eq!(h.status().await.unwrap().nodes[0].state, NodeState::Queued);
    assert!(h.cancel().await.unwrap());
    let s = b.queue_stats("rwq").await.unwrap();
    assert_eq!((s.ready, s.delayed), (0, 0), "the retry is skipped too");

    let plan = raw("rwq", "a").plan_with_id("has space".into()).unwrap();
    assert!(matches!(
        b.submit_workflow(plan).await,
        Err(Error::Config(_))
    ));
    let plan = raw("rwq", "a").plan_with_id(h.id().into()).unwrap();
    assert!(
        b.submit_workflow(plan).await.is_err(),
        "an id is submitted once"
    );
}

/// A group of `n` raw steps on `queue`.
fn group_of(queue: &str, n: usize) -> Workflow {
    Workflow::from(
        (0..n)
            .map(|i| Workflow::message(Message::new(queue, "g", vec![json!(i)])))
            .collect::<Group>(),
    )
}

fn states(st: &workflow::WorkflowStatus) -> Vec<NodeState> {
    st.nodes.iter().map(|n| n.state).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_a_stopped_workflow_held_by_a_dead_worker_never_run() {
    let url = redis_url();
    let ns = support::namespace();
    let _clean = Cleanup::new(&ns);
    let timeout = Duration::from_millis(300);
    let b = support::broker_with(&url, &ns, timeout).await;
    let dead = support::broker_with(&url, &ns, timeout).await;
    let h = Workflow::from(
        Group::new()
            .with(raw("rwd", "a"))
            .with(raw("rwd", "b"))
            .with(raw("rwd", "c")),
    )
    .run(&b)
    .await
    .unwrap();
    // A worker takes two of them (prefetched, say) and dies.
    assert_eq!(actors(&dead.fetch("rwd", 2).await.unwrap()), ["a", "b"]);
    drop(dead);
    use NodeState::*;
    assert_eq!(
        states(&h.status().await.unwrap()),
        [Running, Running, Queued]
    );
    assert!(h.cancel().await.unwrap());
    assert_eq!(
        states(&h.status().await.unwrap()),
        [Running, Running, Skipped]
    );
    // Its messages come back once it is found dead ...
    tokio::time::sleep(timeout * 2).await;
    b.heartbeat(&["rwd".to_owned(), "rwd.DQ".to_owned()])
        .await
        .unwrap();
    // ... and are dropped, not handed out: their workflow was cancelled.
    assert!(b.fetch("rwd", 10).await.unwrap().is_empty());
    assert_eq!(states(&h.status().await.unwrap()), [Skipped; 3]);
    assert_eq!(b.queue_stats("rwd").await.unwrap(), Default::default());
    let mut r = Resp::connect(&url);
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rwd.msgs")]).int(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_that_is_gone_starts_no_retry_and_its_completions_change_nothing() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    let h = Workflow::from(Group::new().with(raw("rwg", "a")).with(raw("rwg", "b")))
        .run(&b)
        .await
        .unwrap();
    let got = b.fetch("rwg", 1).await.unwrap();
    // Running workflows never expire: a workflow that is gone has finished long ago.
    r.cmd(&["DEL", &wf_key(&b, h.id())]);
    b.settle(&[Settlement::Replace {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
        message: Message::decode(&got[0].payload).unwrap(),
        delay: Some(Duration::from_millis(1)),
    }])
    .await
    .unwrap();
    let s = b.queue_stats("rwg").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight), (1, 0, 0), "no retry");
    // Taking a message reads only stopped workflows (ns:__wf_stopped__), so b's message is
    // handed out; its completion finds no workflow and writes none.
    let b_msg = b.fetch("rwg", 10).await.unwrap();
    assert_eq!(actors(&b_msg), ["b"]);
    b.settle(&[complete(&b_msg[0])]).await.unwrap();
    assert_eq!(b.queue_stats("rwg").await.unwrap(), Default::default());
    assert!(r.keys(&format!("{}:wf:*", b.namespace())).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_an_earlier_workflow_with_the_same_id_change_nothing() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    let id = format!("reused-{}", b.namespace());
    let pair = |x: &str, y: &str| {
        Workflow::from(Group::new().with(raw("rwn", x)).with(raw("rwn", y)))
            .on_success(raw("rwn_done", "done"))
    };
    b.submit_workflow(pair("a_old", "b_old").plan_with_id(id.clone()).unwrap())
        .await
        .unwrap();
    let old = b.fetch("rwn", 10).await.unwrap();
    assert_eq!(actors(&old), ["a_old", "b_old"]);
    // The old workflow's state expires while its messages are still about.
    r.cmd(&["DEL", &wf_key(&b, &id)]);
    b.submit_workflow(pair("a_new", "b_new").plan_with_id(id.clone()).unwrap())
        .await
        .unwrap();
    // An old completion does not complete the new workflow's node 0; nor does an old message
    // given back (taking messages reads only stopped workflows, so it is handed out again).
    b.settle(&[
        complete(&old[0]),
        Settlement::Requeue {
            queue: old[1].queue.clone(),
            receipt: old[1].receipt.clone(),
        },
    ])
    .await
    .unwrap();
    let st = b.workflow_status(&id).await.unwrap();
    assert_eq!(states(&st), [NodeState::Queued, NodeState::Queued]);
    assert_eq!(r.cmd(&["HGET", &wf_key(&b, &id), "j0"]).int(), 2);
    let mut new = b.fetch("rwn", 10).await.unwrap();
    assert_eq!(actors(&new), ["a_new", "b_new", "b_old"]);
    b.settle(&[complete(&new.pop().unwrap())]).await.unwrap();
    let st = b.workflow_status(&id).await.unwrap();
    assert_eq!(states(&st), [NodeState::Running, NodeState::Running]);
    assert_eq!(r.cmd(&["HGET", &wf_key(&b, &id), "j0"]).int(), 2);
    b.settle(&new.iter().map(complete).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(
        b.workflow_status(&id).await.unwrap().state,
        WorkflowState::Succeeded
    );
    assert_eq!(actors(&b.fetch("rwn_done", 10).await.unwrap()), ["done"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitting_the_same_plan_again_is_a_no_op() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let plan = Workflow::from(Chain::new().then(raw("rwi", "a")).then(raw("rwi", "b")))
        .plan()
        .unwrap();
    let id = plan.id.clone();
    b.submit_workflow(plan.clone()).await.unwrap();
    b.submit_workflow(plan.clone()).await.unwrap();
    let got = b.fetch("rwi", 10).await.unwrap();
    assert_eq!(actors(&got), ["a"], "started once");
    b.settle(&[complete(&got[0])]).await.unwrap();
    b.submit_workflow(plan.clone()).await.unwrap();
    assert_eq!(actors(&b.fetch("rwi", 10).await.unwrap()), ["b"]);
    let st = b.workflow_status(&id).await.unwrap();
    assert_eq!(states(&st), [NodeState::Done, NodeState::Running]);
    // Another plan under the same id is refused.
    let other = raw("rwi", "a").plan_with_id(id).unwrap();
    assert!(b.submit_workflow(other).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_plan_expires_from_its_first_chunk_on() {
    let server = support::RedisServer::start_in_memory();
    let url = server.url();
    let b = support::broker_with(&url, &support::namespace(), Duration::from_secs(60)).await;
    let filler = "x".repeat(400);
    let group: Group = (0..15_000)
        .map(|i| Workflow::message(Message::new("rwb", "big", vec![json!(i), json!(filler)])))
        .collect();
    let plan = Workflow::from(group).plan().unwrap();
    let pattern = format!("{}:wf:*staging*", b.namespace());
    let submit = tokio::spawn({
        let b = b.clone();
        async move { b.submit_workflow(plan).await }
    });
    let mut r = Resp::connect(&url);
    let (mut seen, mut without_ttl) = (0, 0);
    while !submit.is_finished() {
        for key in r.keys(&pattern) {
            seen += 1;
            let ttl = r.cmd(&["PTTL", &key]).int();
            if ttl == -1 {
                without_ttl += 1;
            }
        }
    }
    submit.await.unwrap().unwrap();
    eprintln!("the staging key was seen {seen} times");
    assert_eq!(
        without_ttl, 0,
        "seen without an expiry {without_ttl} of {seen} times"
    );
    assert!(r.keys(&pattern).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_start_sets_start_in_slices_and_all_of_them_start() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    const N: usize = 12_000;
    // An entry set: all queued once the submission returns.
    let h = group_of("rwl", N).run(&b).await.unwrap();
    assert_eq!(b.queue_stats("rwl").await.unwrap().ready, N);
    assert_eq!(h.status().await.unwrap().count(NodeState::Queued), N);
    assert!(h.cancel().await.unwrap());
    assert_eq!(b.queue_stats("rwl").await.unwrap().ready, 0);
    assert_eq!(h.status().await.unwrap().count(NodeState::Skipped), N);

    // A start set after a completion: the settlement starts a slice, the rest follows.
    let h = Workflow::chain([raw("rwl", "first"), group_of("rwl", N)])
        .run(&b)
        .await
        .unwrap();
    // (The first group's receipts are still on the list; fetch drops them.)
    let mut first = Vec::new();
    while first.is_empty() {
        first = b.fetch("rwl", 1000).await.unwrap();
    }
    assert_eq!(actors(&first), ["first"]);
    b.settle(&[complete(&first[0])]).await.unwrap();
    eventually(T, "every member to start", || async {
        b.queue_stats("rwl").await.unwrap().ready == N
    })
    .await;
    let st = h.status().await.unwrap();
    assert_eq!(
        (st.count(NodeState::Done), st.count(NodeState::Queued)),
        (1, N)
    );
    assert_eq!(
        r.cmd(&["HEXISTS", &wf_key(&b, h.id()), "ps"]).int(),
        0,
        "nothing left to start"
    );

    // A failure skips the queued members, a slice in the settlement, the rest after.
    let got = b.fetch("rwl", 1).await.unwrap();
    b.settle(&[Settlement::DeadLetter {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
        reason: "no".into(),
        workflow: Message::decode(&got[0].payload).unwrap().workflow(),
    }])
    .await
    .unwrap();
    eventually(T, "every member to be skipped", || async {
        b.queue_stats("rwl").await.unwrap().ready == 0
    })
    .await;
    let st = h.status().await.unwrap();
    assert_eq!(st.state, WorkflowState::Failed);
    assert_eq!(
        (
            st.count(NodeState::Done),
            st.count(NodeState::Failed),
            st.count(NodeState::Skipped)
        ),
        (1, 1, N - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_alone_is_one_read_and_running_means_taken() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let h = Workflow::from(Group::new().with(raw("rws2", "a")).with(raw("rws2", "b")))
        .run(&b)
        .await
        .unwrap();
    assert_eq!(
        b.workflow_state(h.id()).await.unwrap(),
        (WorkflowState::Running, None)
    );
    let got = b.fetch("rws2", 10).await.unwrap();
    use NodeState::*;
    assert_eq!(states(&h.status().await.unwrap()), [Running, Running]);
    // Given back unprocessed: queued again.
    b.settle(&[Settlement::Requeue {
        queue: got[1].queue.clone(),
        receipt: got[1].receipt.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(states(&h.status().await.unwrap()), [Running, Queued]);
    let trips = b.round_trips();
    b.settle(&[Settlement::DeadLetter {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
        reason: "a broke".into(),
        workflow: Message::decode(&got[0].payload).unwrap().workflow(),
    }])
    .await
    .unwrap();
    let (state, failure) = b.workflow_state(h.id()).await.unwrap();
    assert_eq!(b.round_trips() - trips, 2, "the settlement and one read");
    assert_eq!(state, WorkflowState::Failed);
    let failure = failure.unwrap();
    assert_eq!(
        (failure.node, failure.actor.as_str(), failure.error.as_str()),
        (0, "a", "a broke")
    );
    assert!(matches!(
        b.workflow_state("no-such-workflow").await,
        Err(Error::UnknownWorkflow(_))
    ));
}

/// The number of members of `ns:__wf_pending__` (workflows with tasks left to start).
fn pending_index(r: &mut Resp, ns: &str) -> i64 {
    r.cmd(&["ZCARD", &format!("{ns}:__wf_pending__")]).int()
}

#[test]
fn a_workflow_whose_next_tasks_were_left_to_start_resumes_after_its_starter_died() {
    let url = redis_url();
    let ns = support::namespace();
    let _clean = Cleanup::new(&ns);
    let mut r = Resp::connect(&url);
    // The main runtime: submits, reads, and sends the heartbeats at the end.
    let main = tokio::runtime::Runtime::new().unwrap();
    let timeout = Duration::from_millis(300);
    let b = main.block_on(support::broker_with(&url, &ns, timeout));
    const BIG: usize = 6_000;
    // W1's completion starts more than one call starts (5 000); W2's completion comes after
    // it in the same settlement batch.
    let w1 = Workflow::chain([raw("rwp1", "first"), group_of("rwp_big", BIG)])
        .plan()
        .unwrap();
    let w2 = Workflow::chain([raw("rwp2", "a"), group_of("rwp2", 3)])
        .plan()
        .unwrap();
    let (id1, id2) = (w1.id.clone(), w2.id.clone());
    main.block_on(async {
        b.submit_workflow(w1).await.unwrap();
        b.submit_workflow(w2).await.unwrap();
    });
    // A worker completes W1's and W2's first tasks in one batch, and its process exits right
    // after: nothing it would have done in the background happens.
    std::thread::spawn({
        let (url, ns) = (url.clone(), ns.clone());
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let dying = support::broker_with(&url, &ns, timeout).await;
                let mut got = dying.fetch("rwp1", 10).await.unwrap();
                got.extend(dying.fetch("rwp2", 10).await.unwrap());
                assert_eq!(actors(&got), ["first", "a"]);
                dying
                    .settle(&got.iter().map(complete).collect::<Vec<_>>())
                    .await
                    .unwrap();
            });
            drop(rt);
        }
    })
    .join()
    .unwrap();
    main.block_on(async {
        let st2 = b.workflow_status(&id2).await.unwrap();
        use NodeState::*;
        // At least one task of W2's next step started with the completion, whatever W1 took.
        assert_eq!(
            states(&st2).iter().filter(|s| **s == Queued).count(),
            1,
            "{:?}",
            states(&st2)
        );
        assert_eq!(pending_index(&mut r, &ns), 2, "both have tasks left");
        let st1 = b.workflow_status(&id1).await.unwrap();
        assert_eq!(st1.count(Queued), 5_000);
        // A heartbeat of any worker (here one consuming other queues) goes on with them once
        // they made no progress for a heartbeat interval.
        tokio::time::sleep(timeout).await;
        b.heartbeat(&["elsewhere".to_owned()]).await.unwrap();
        let st2 = b.workflow_status(&id2).await.unwrap();
        assert_eq!(states(&st2), [Done, Queued, Queued, Queued]);
        let st1 = b.workflow_status(&id1).await.unwrap();
        assert_eq!((st1.count(Done), st1.count(Queued)), (1, BIG));
        assert_eq!(pending_index(&mut r, &ns), 0);
        for id in [&id1, &id2] {
            assert_eq!(r.cmd(&["HEXISTS", &wf_key(&b, id), "ps"]).int(), 0);
        }
        assert_eq!(b.queue_stats("rwp2").await.unwrap().ready, 3);
        assert_eq!(b.queue_stats("rwp_big").await.unwrap().ready, BIG);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_that_went_through_is_not_reported_as_failed() {
    let url = redis_url();
    let ns = support::namespace();
    let _clean = Cleanup::new(&ns);
    let timeout = Duration::from_millis(300);
    let b = support::broker_with(&url, &ns, timeout).await;
    let mut r = Resp::connect(&url);
    // 5 001 entry tasks: the submission starts 5 000; the last one, started by the next call,
    // goes to a queue whose key is of the wrong type.
    let mut group: Group = (0..5_000)
        .map(|i| Workflow::message(Message::new("rwsub", "g", vec![json!(i)])))
        .collect();
    group = group.with(raw("rwsub_bad", "last"));
    let plan = Workflow::from(group).plan().unwrap();
    let id = plan.id.clone();
    r.cmd(&["SET", &format!("{ns}:rwsub_bad"), "not a list"]);
    b.submit_workflow(plan.clone())
        .await
        .expect("the workflow was submitted: a caller must not submit it again");
    let st = b.workflow_status(&id).await.unwrap();
    assert_eq!(st.state, WorkflowState::Running);
    assert_eq!(st.count(NodeState::Queued), 5_000);
    assert_eq!(st.nodes[5_000].state, NodeState::Waiting);
    assert_eq!(pending_index(&mut r, &ns), 1);
    // Once the key is fixed, a heartbeat starts the rest.
    r.cmd(&["DEL", &format!("{ns}:rwsub_bad")]);
    tokio::time::sleep(timeout).await;
    b.heartbeat(&[]).await.unwrap();
    assert_eq!(
        b.workflow_status(&id).await.unwrap().nodes[5_000].state,
        NodeState::Queued
    );
    assert_eq!(pending_index(&mut r, &ns), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_workflow_message_fails_its_workflow() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let h = Workflow::chain([raw("rwu", "a"), raw("rwu", "b")])
        .run(&b)
        .await
        .unwrap();
    // Node 0's payload is garbage: the worker cannot even tell it is a workflow's.
    let ids = r.cmd(&["LRANGE", &format!("{ns}:rwu"), "0", "-1"]).texts();
    assert_eq!(ids.len(), 1);
    r.cmd(&["HSET", &format!("{ns}:rwu.msgs"), &ids[0], "{not json"]);
    let w = start(worker(b.clone(), &["rwu"]));
    let st = h.wait_timeout(T).await;
    w.stop().await;
    match st {
        Err(Error::WorkflowFailed { node, error, .. }) => {
            assert_eq!(node, 0);
            assert!(!error.is_empty());
        }
        other => panic!("expected the workflow to fail, got {other:?}"),
    }
    let st = h.status().await.unwrap();
    assert_eq!(states(&st), [NodeState::Failed, NodeState::Skipped]);
    assert_eq!(b.queue_stats("rwu").await.unwrap().dead, 1);
    // A dead letter without a workflow whose receipt is no workflow's changes nothing.
    let plain = Workflow::chain([raw("rwu2", "a"), raw("rwu2", "b")])
        .run(&b)
        .await
        .unwrap();
    let got = b.fetch("rwu2", 1).await.unwrap();
    b.settle(&[Settlement::DeadLetter {
        queue: got[0].queue.clone(),
        receipt: format!("0:{}@{}", "f00", plain.id()),
        reason: "an earlier submission".into(),
        workflow: None,
    }])
    .await
    .unwrap();
    assert_eq!(
        plain.status().await.unwrap().state,
        WorkflowState::Running,
        "another nonce: not this submission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workflow_a_batch_stops_is_swept() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    // The first failure uses up what one call sweeps; the second comes after it.
    let h1 = group_of("rwsw1", 5_000).run(&b).await.unwrap();
    let h2 = group_of("rwsw2", 3).run(&b).await.unwrap();
    let mut got = b.fetch("rwsw1", 1).await.unwrap();
    got.extend(b.fetch("rwsw2", 1).await.unwrap());
    let dead: Vec<Settlement> = got
        .iter()
        .map(|d| Settlement::DeadLetter {
            queue: d.queue.clone(),
            receipt: d.receipt.clone(),
            reason: "no".into(),
            workflow: Message::decode(&d.payload).unwrap().workflow(),
        })
        .collect();
    b.settle(&dead).await.unwrap();
    for h in [&h1, &h2] {
        assert_eq!(h.status().await.unwrap().state, WorkflowState::Failed);
    }
    eventually(
        T,
        "the second workflow's queued tasks to be skipped",
        || async { b.queue_stats("rwsw2").await.unwrap().ready == 0 },
    )
    .await;
    assert_eq!(b.queue_stats("rwsw1").await.unwrap().ready, 0);
    let st = h2.status().await.unwrap();
    use NodeState::*;
    assert_eq!(states(&st), [Failed, Skipped, Skipped]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_of_a_node_changes_nothing_about_its_running_message() {
    let url = redis_url();
    let ns = support::namespace();
    let _clean = Cleanup::new(&ns);
    let timeout = Duration::from_millis(300);
    let b = support::broker_with(&url, &ns, timeout).await;
    let other = support::broker_with(&url, &ns, timeout).await;
    let mut r = Resp::connect(&url);
    let h = Workflow::from(Group::new().with(raw("rws6", "a")).with(raw("rws6", "b")))
        .run(&b)
        .await
        .unwrap();
    // a fails once: its retry is its current message, which another worker takes.
    let first = b.fetch("rws6", 1).await.unwrap();
    assert_eq!(actors(&first), ["a"]);
    b.settle(&[Settlement::Replace {
        queue: first[0].queue.clone(),
        receipt: first[0].receipt.clone(),
        message: Message::decode(&first[0].payload).unwrap(),
        delay: None,
    }])
    .await
    .unwrap();
    let running = other.fetch("rws6", 10).await.unwrap();
    assert_eq!(actors(&running), ["b", "a"]);
    let retry = running[1].clone();
    assert_ne!(retry.receipt, first[0].receipt);
    use NodeState::*;
    assert_eq!(states(&h.status().await.unwrap()), [Running, Running]);
    // A stale copy of a's first message turns up with a worker that died.
    let msgs = format!("{ns}:rws6.msgs");
    r.cmd(&[
        b"HSET".as_slice(),
        msgs.as_bytes(),
        first[0].receipt.as_bytes(),
        first[0].payload.as_slice(),
    ]);
    r.cmd(&[
        "SADD",
        &format!("{ns}:__acks__.gone.rws6"),
        &first[0].receipt,
    ]);
    r.cmd(&["ZADD", &format!("{ns}:__heartbeats__"), "1", "gone"]);
    b.heartbeat(&["rws6".to_owned()]).await.unwrap();
    assert_eq!(
        states(&h.status().await.unwrap()),
        [Running, Running],
        "a's current message still runs"
    );
    // The workflow is cancelled while a's retry runs: it runs to its end, and when it
    // fails for good its dead letter is kept.
    assert!(h.cancel().await.unwrap());
    assert_eq!(states(&h.status().await.unwrap()), [Running, Running]);
    other
        .settle(&[Settlement::DeadLetter {
            queue: retry.queue.clone(),
            receipt: retry.receipt.clone(),
            reason: "gave up".into(),
            workflow: Message::decode(&retry.payload).unwrap().workflow(),
        }])
        .await
        .unwrap();
    let xq = format!("{ns}:rws6.XQ");
    assert_ne!(
        r.cmd(&["ZSCORE", &xq, &retry.receipt]),
        support::Reply::Nil,
        "the dead letter of the running copy is kept"
    );
    assert!(
        r.cmd(&["HEXISTS", &format!("{xq}.msgs"), &retry.receipt])
            .int()
            == 1
    );
    // The stale copy is dropped when fetched; it marks nothing.
    assert!(b.fetch("rws6", 10).await.unwrap().is_empty());
    assert_eq!(states(&h.status().await.unwrap()), [Failed, Running]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_of_an_unknown_layout_is_refused_with_its_version() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let h = Workflow::chain([raw("rwv", "a"), raw("rwv", "b")])
        .run(&b)
        .await
        .unwrap();
    let key = wf_key(&b, h.id());
    assert_eq!(r.cmd(&["HGET", &key, "v"]).text(), "3");
    let got = b.fetch("rwv", 1).await.unwrap();
    b.settle(&[Settlement::Requeue {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
    }])
    .await
    .unwrap();
    for (v, says) in [
        (Some("2"), "layout v2"),
        (Some("4"), "layout v4"),
        (None, "no version field"),
    ] {
        match v {
            Some(v) => r.cmd(&["HSET", &key, "v", v]),
            None => r.cmd(&["HDEL", &key, "v"]),
        };
        let refused = |e: workflow::Error| {
            let e = e.to_string();
            assert!(e.contains(says) && e.contains("reads v3"), "{e}");
        };
        refused(b.workflow_status(h.id()).await.unwrap_err());
        refused(b.workflow_state(h.id()).await.unwrap_err());
        refused(b.cancel_workflow(h.id()).await.unwrap_err());
        refused(b.settle(&[complete(&got[0])]).await.unwrap_err());
        // A fetch does not read running workflows: it hands the message out, and its
        // completion is refused, changing nothing; given back, it is where it was.
        let taken = b.fetch("rwv", 10).await.unwrap();
        assert_eq!(actors(&taken), ["a"]);
        refused(b.settle(&[complete(&taken[0])]).await.unwrap_err());
        b.settle(&[Settlement::Requeue {
            queue: taken[0].queue.clone(),
            receipt: taken[0].receipt.clone(),
        }])
        .await
        .unwrap();
        assert_eq!(
            r.cmd(&["LRANGE", &format!("{ns}:rwv"), "0", "-1"]).texts(),
            [got[0].receipt.clone()]
        );
        let plan = Workflow::chain([raw("rwv", "a"), raw("rwv", "b")])
            .plan_with_id(h.id().to_owned())
            .unwrap();
        refused(b.submit_workflow(plan).await.unwrap_err());
    }
    r.cmd(&["HSET", &key, "v", "3"]);
    let again = b.fetch("rwv", 10).await.unwrap();
    b.settle(&[complete(&again[0])]).await.unwrap();
    assert_eq!(actors(&b.fetch("rwv", 10).await.unwrap()), ["b"]);
}

fn room(queue: &str, max: usize) -> Room {
    Room {
        queue: queue.into(),
        max,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_hands_the_next_step_to_a_worker_with_room() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let q = "rwt";
    let one = Workflow::chain([raw(q, "a"), raw(q, "b"), raw(q, "c")])
        .run(&b)
        .await
        .unwrap();
    let a = b.fetch(q, 1).await.unwrap();
    assert_eq!(actors(&a), ["a"]);

    // The queue is empty: b goes to the worker without passing through it.
    let s = b
        .settle_and_take(&[complete(&a[0])], &[room(q, 4)])
        .await
        .unwrap();
    assert_eq!(actors(&s.taken), ["b"]);
    assert_eq!(&*s.taken[0].queue, q);
    assert!(s.ready.is_empty(), "{:?}", s.ready);
    let st = b.queue_stats(q).await.unwrap();
    assert_eq!((st.ready, st.in_flight), (0, 1));
    use NodeState::*;
    assert_eq!(
        states(&one.status().await.unwrap()),
        [Done, Running, Waiting]
    );

    // No room offered: c is queued, as by `settle`.
    let s = b
        .settle_and_take(&[complete(&s.taken[0])], &[])
        .await
        .unwrap();
    assert!(s.taken.is_empty());
    assert_eq!(s.ready, [q]);

    // The queue is not empty: the worker gets its head, as a fetch would, up to the room.
    let two = Workflow::chain([raw(q, "d"), raw(q, "e")])
        .run(&b)
        .await
        .unwrap();
    let cd = b.fetch(q, 2).await.unwrap();
    assert_eq!(actors(&cd), ["c", "d"]);
    b.enqueue(Message::new(q, "p", vec![]), None).await.unwrap();
    let s = b
        .settle_and_take(&[complete(&cd[1])], &[room(q, 1)])
        .await
        .unwrap();
    assert_eq!(actors(&s.taken), ["p"]);
    assert_eq!(s.ready, [q], "e is left for others");
    // A batch that enqueues nothing takes nothing.
    let s = b
        .settle_and_take(
            &[
                complete(&cd[0]),
                Settlement::Ack {
                    queue: s.taken[0].queue.clone(),
                    receipt: s.taken[0].receipt.clone(),
                },
            ],
            &[room(q, 5)],
        )
        .await
        .unwrap();
    assert!(s.taken.is_empty());
    assert_eq!(one.status().await.unwrap().state, WorkflowState::Succeeded);
    let e = b.fetch(q, 5).await.unwrap();
    assert_eq!(actors(&e), ["e"]);
    b.settle(&[complete(&e[0])]).await.unwrap();
    assert_eq!(two.status().await.unwrap().state, WorkflowState::Succeeded);
    assert_eq!(b.queue_stats(q).await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_workflows_message_given_back_is_dropped_when_taken() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let h = Workflow::from(Group::new().with(raw("rwk", "a")).with(raw("rwk", "b")))
        .run(&b)
        .await
        .unwrap();
    let got = b.fetch("rwk", 10).await.unwrap();
    assert!(h.cancel().await.unwrap());
    use NodeState::*;
    // Taken nodes run to their end; the cancelled workflow is listed as stopped.
    assert_eq!(states(&h.status().await.unwrap()), [Running, Running]);
    // (scored by when its state expires)
    let until = r.cmd(&["ZSCORE", &format!("{ns}:__wf_stopped__"), h.id()]);
    assert!(until.int() > 0);
    b.settle(&[Settlement::Requeue {
        queue: got[1].queue.clone(),
        receipt: got[1].receipt.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(b.queue_stats("rwk").await.unwrap().ready, 1);
    // Given back, b is not handed out again, and its node is skipped.
    assert!(b.fetch("rwk", 10).await.unwrap().is_empty());
    assert_eq!(states(&h.status().await.unwrap()), [Running, Skipped]);
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rwk.msgs")]).int(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_by_a_batch_that_stops_its_workflow_is_not_handed_out() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    // b's node comes after the 6000 members of the group: the sweep of the failure's own call
    // (5000 nodes) does not reach it.
    let h = Workflow::from(
        Group::new()
            .with(Workflow::group((0..6000).map(|_| raw("rwx_g", "g"))))
            .with(Workflow::chain([raw("rwx", "a"), raw("rwx", "b")])),
    )
    .run(&b)
    .await
    .unwrap();
    let a = b.fetch("rwx", 10).await.unwrap();
    assert_eq!(actors(&a), ["a"]);
    let g = b.fetch("rwx_g", 1).await.unwrap();
    let s = b
        .settle_and_take(
            &[
                complete(&a[0]),
                Settlement::DeadLetter {
                    queue: g[0].queue.clone(),
                    receipt: g[0].receipt.clone(),
                    reason: "g broke".into(),
                    workflow: Message::decode(&g[0].payload).unwrap().workflow(),
                },
            ],
            &[room("rwx", 10)],
        )
        .await
        .unwrap();
    assert!(s.taken.is_empty(), "{:?}", actors(&s.taken));
    assert_eq!(h.status().await.unwrap().state, WorkflowState::Failed);
    assert!(b.fetch("rwx", 10).await.unwrap().is_empty());
}
