//! Nothing is lost and nothing advances twice when a worker is killed (`kill -9`) with tasks in
//! flight, or when Redis restarts under a running worker.

mod support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use support::{
    broker_with, eventually, namespace, redis_url, start, worker, Cleanup, RedisServer, Reply, Resp,
};
use workflow::prelude::*;
use workflow::{Chain, Group, NodeState, RedisBroker, Workflow, WorkflowHandle, WorkflowState};

const T: Duration = Duration::from_secs(90);
const CHILD_ENV: &str = "WF_REDIS_RECOVERY_CHILD";

/// Runs long enough that a kill finds some of it in flight; logs each run in Redis, so that
/// runs in the killed process count too.
#[actor(queue = "rk")]
async fn slow(url: String, ns: String, label: String) {
    tokio::time::sleep(Duration::from_millis(60)).await;
    tokio::task::spawn_blocking(move || {
        Resp::connect(&url).cmd(&["RPUSH", &format!("{ns}:test-log"), &label]);
    })
    .await
    .unwrap();
}

static RAN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

#[actor(queue = "rr")]
async fn quick(tag: String, label: String) {
    tokio::time::sleep(Duration::from_millis(10)).await;
    RAN.lock().unwrap().push((tag, label));
}

/// `a -> {b1, b2, b3} -> c`, labelled `w<i>.<node>`.
fn diamond(i: usize, step: impl Fn(String) -> Workflow) -> Workflow {
    let l = |n: &str| step(format!("w{i}.{n}"));
    Workflow::from(
        Chain::new()
            .then(l("a"))
            .then(Group::new().with(l("b1")).with(l("b2")).with(l("b3")))
            .then(l("c")),
    )
}

async fn all_succeeded(handles: &[WorkflowHandle]) -> bool {
    for h in handles {
        match h.status().await {
            Ok(s) if s.state == WorkflowState::Succeeded => {}
            Ok(s) if s.state == WorkflowState::Running => return false,
            Ok(s) => panic!("workflow {} ended {:?}", h.id(), s.state),
            Err(_) => return false,
        }
    }
    true
}

/// Every node done, and the join counted each member exactly once.
async fn assert_advanced_once(b: &RedisBroker, r: &mut Resp, handles: &[WorkflowHandle]) {
    for h in handles {
        let st = h.status().await.unwrap();
        assert_eq!(st.count(NodeState::Done), st.nodes.len(), "{st:?}");
        let join = r.cmd(&[
            "HGET",
            &format!("{}:wf:{{{}}}", b.namespace(), h.id()),
            "j0",
        ]);
        assert_eq!(
            join.int(),
            0,
            "the group of {} counted a member twice or never",
            h.id()
        );
    }
}

/// The worker that `a_killed_worker_s_tasks_are_recovered...` starts in a child process and
/// kills. Does nothing when run on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run as a child process by the kill -9 test"]
async fn child_worker() {
    let Ok(cfg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, ns) = cfg.split_once(' ').unwrap();
    let b = broker_with(url, ns, Duration::from_secs(2)).await;
    worker(b, &["rk"])
        .concurrency(8)
        .run_until(std::future::pending())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_tasks_are_recovered_and_every_workflow_completes_once() {
    let url = redis_url();
    let ns = namespace();
    let b = broker_with(&url, &ns, Duration::from_secs(2)).await;
    let _clean = Cleanup::on(&url, &ns);
    let mut r = Resp::connect(&url);
    let mut handles = Vec::new();
    for i in 0..50 {
        let wf = diamond(i, |label| {
            slow::message(url.clone(), ns.clone(), label).into()
        });
        handles.push(wf.run(&b).await.unwrap());
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_worker",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{url} {ns}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = format!("{ns}:test-log");
    eventually(T, "the child worker to run 60 tasks", || {
        let n = Resp::connect(&url).cmd(&["LLEN", &log]).int();
        async move { n >= 60 }
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let acks = r.keys(&format!("{ns}:__acks__.*"));
    let held: i64 = acks.iter().map(|k| r.cmd(&["SCARD", k]).int()).sum();
    assert!(
        held > 0,
        "the child held no message when it was killed; nothing to recover"
    );
    let ran_before = r.cmd(&["LLEN", &log]).int();

    let w = start(worker(b.clone(), &["rk"]).concurrency(16));
    eventually(T, "all 50 workflows to succeed", || all_succeeded(&handles)).await;
    w.stop().await;

    assert_advanced_once(&b, &mut r, &handles).await;
    let labels = r.cmd(&["LRANGE", &log, "0", "-1"]).texts();
    for i in 0..50 {
        let first = |n: &str| {
            let l = format!("w{i}.{n}");
            labels
                .iter()
                .position(|x| *x == l)
                .unwrap_or_else(|| panic!("{l} never ran"))
        };
        let c = first("c");
        assert!(first("a") < first("b1") && ["b1", "b2", "b3"].iter().all(|n| first(n) < c));
    }
    assert!(labels.len() >= 250, "{} runs", labels.len());
    assert!(
        labels.len() as i64 > ran_before,
        "the second worker ran the rest"
    );
    let stats = b.queue_stats("rk").await.unwrap();
    assert_eq!(stats, Default::default());
    // The dead worker's acks sets are gone, and so is it from the heartbeats.
    let w2 = start(worker(b.clone(), &["rk"]));
    eventually(T, "the dead worker to be forgotten", || {
        let mut r = Resp::connect(&url);
        let workers = r
            .cmd(&["ZRANGE", &format!("{ns}:__heartbeats__"), "0", "-1"])
            .texts();
        let left = r.keys(&format!("{ns}:__acks__.*"));
        let gone =
            workers == [b.worker_id().to_owned()] && left.iter().all(|k| k.contains(b.worker_id()));
        async move { gone }
    })
    .await;
    w2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_complete_across_a_redis_restart() {
    let mut server = RedisServer::start();
    let url = server.url();
    let ns = namespace();
    let b = broker_with(&url, &ns, Duration::from_secs(60)).await;
    let tag = ns.clone();
    let mut handles = Vec::new();
    for i in 0..30 {
        let wf = diamond(i, |label| quick::message(tag.clone(), label).into());
        handles.push(wf.run(&b).await.unwrap());
    }
    let ran = |tag: &str| RAN.lock().unwrap().iter().filter(|(t, _)| t == tag).count();
    let w = start(worker(b.clone(), &["rr"]).concurrency(4));
    eventually(T, "some tasks to run", || async { ran(&tag) >= 20 }).await;
    server.stop();
    assert!(b.queue_stats("rr").await.is_err(), "Redis is down");
    server.start_again();
    eventually(T, "all 30 workflows to succeed after the restart", || {
        all_succeeded(&handles)
    })
    .await;
    w.stop().await;
    let mut r = Resp::connect(&url);
    assert_advanced_once(&b, &mut r, &handles).await;
    assert!(ran(&tag) >= 150);
    assert_eq!(b.queue_stats("rr").await.unwrap(), Default::default());
    assert_eq!(r.cmd(&["PING"]), Reply::Bulk(b"PONG".to_vec()));
}
