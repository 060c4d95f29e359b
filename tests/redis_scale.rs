//! How long Redis is busy with one call on a large workflow: a group of `WF_SCALE_NODES`
//! (default 50 000) tasks submitted, its status read, then cancelled, on a private in-memory
//! `redis-server` where 20 workers have a heartbeat (the status and the cancellation look for
//! started nodes in their acks sets). Prints the wall time of each operation and the longest single command Redis
//! ran meanwhile (its SLOWLOG), which is how long every other client of that Redis waited.
//!
//! Each of those commands must stay well under half a second at 50 000 nodes (a script that
//! walks every node takes over a second there). `WF_SCALE_NODES=500000 cargo test -p workflow
//! --test redis_scale -- --nocapture` prints the figures of a larger case.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{namespace, RedisServer, Reply, Resp};
use workflow::{Broker, Group, Message, NodeState, Workflow, WorkflowState};

/// The longest command in the SLOWLOG (µs) and its name; clears the log.
fn longest(r: &mut Resp) -> (i64, String) {
    let Reply::Array(entries) = r.cmd(&["SLOWLOG", "GET", "100000"]) else {
        panic!("SLOWLOG GET")
    };
    r.cmd(&["SLOWLOG", "RESET"]);
    let mut best = (0, String::new());
    for e in entries {
        let Reply::Array(parts) = e else { continue };
        let us = parts[2].int();
        let name = match &parts[3] {
            Reply::Array(args) => args
                .first()
                .map(|a| {
                    String::from_utf8_lossy(&match a {
                        Reply::Bulk(b) => b.clone(),
                        _ => Vec::new(),
                    })
                    .into_owned()
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        if std::env::var_os("WF_SCALE_VERBOSE").is_some() {
            eprintln!("  {us} µs {name}");
        }
        if us > best.0 {
            best = (us, name);
        }
    }
    best
}

/// Workers with a heartbeat during the test.
const WORKERS: usize = 20;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_single_redis_call_on_a_large_workflow_blocks_redis_for_long() {
    let n: usize = std::env::var("WF_SCALE_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = workflow::RedisBroker::builder(&url)
        .namespace(namespace())
        .response_timeout(Duration::from_secs(120))
        .connect()
        .await
        .unwrap();
    let mut r = Resp::connect(&url);
    r.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);
    r.cmd(&["CONFIG", "SET", "slowlog-max-len", "100000"]);
    let group: Group = (0..n)
        .map(|i| Workflow::message(Message::new("scale", "t", vec![json!(i)])))
        .collect();
    let plan = Workflow::from(group).plan().unwrap();
    let id = plan.id.clone();
    // Workers with a heartbeat, each holding messages: a stopped workflow's sweep and its
    // status look for its started nodes in their acks sets.
    let ns = b.namespace().to_owned();
    for w in 0..WORKERS {
        let worker = format!("busy-{w}");
        r.cmd(&[
            "ZADD",
            &format!("{ns}:__heartbeats__"),
            &now_ms().to_string(),
            &worker,
        ]);
        let mut sadd = vec!["SADD".to_owned(), format!("{ns}:__acks__.{worker}.scale")];
        sadd.extend((0..64).map(|i| format!("other-{i}")));
        r.cmd(&sadd);
    }
    r.cmd(&["SLOWLOG", "RESET"]);

    let t = Instant::now();
    b.submit_workflow(plan).await.unwrap();
    let submit = (t.elapsed(), longest(&mut r));

    let t = Instant::now();
    let st = b.workflow_status(&id).await.unwrap();
    let status = (t.elapsed(), longest(&mut r));
    assert_eq!(st.nodes.len(), n);
    assert_eq!(st.state, WorkflowState::Running);

    let t = Instant::now();
    let state = b.workflow_state(&id).await.unwrap();
    let state_t = (t.elapsed(), longest(&mut r));
    assert_eq!(state.0, WorkflowState::Running);

    let t = Instant::now();
    assert!(b.cancel_workflow(&id).await.unwrap());
    let cancel = (t.elapsed(), longest(&mut r));

    let st = b.workflow_status(&id).await.unwrap();
    assert_eq!(st.count(NodeState::Skipped), n);
    let stats = b.queue_stats("scale").await.unwrap();
    eprintln!(
        "group of {n}: wall time (longest single Redis command, µs)\n  submit {:?} ({:?})\n  \
         status {:?} ({:?})\n  state {:?} ({:?})\n  cancel {:?} ({:?})\n  after cancel: {stats:?}",
        submit.0, submit.1, status.0, status.1, state_t.0, state_t.1, cancel.0, cancel.1
    );
    // SLOWLOG times are in µs; the bound is generous to a busy machine.
    const LIMIT_US: i64 = 500_000;
    for (what, (_, (us, cmd))) in [
        ("submit", &submit),
        ("status", &status),
        ("state", &state_t),
        ("cancel", &cancel),
    ] {
        assert!(
            us < &LIMIT_US,
            "{what}: one Redis command ({cmd}) ran {us} µs"
        );
    }
}
