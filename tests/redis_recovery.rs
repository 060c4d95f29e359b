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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `worker` died holding the message `receipt` of queue `q`: in its acks set, off the list.
fn held_by_dead(r: &mut Resp, ns: &str, worker: &str, q: &str, last_beat: u64) -> String {
    let receipt = r.cmd(&["LPOP", &format!("{ns}:{q}")]).text();
    r.cmd(&["SADD", &format!("{ns}:__acks__.{worker}.{q}"), &receipt]);
    r.cmd(&[
        "ZADD",
        &format!("{ns}:__heartbeats__"),
        &last_beat.to_string(),
        worker,
    ]);
    receipt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dead_worker_is_recovered_however_many_died_before_it() {
    use workflow::{Broker, Message};
    let url = redis_url();
    let ns = namespace();
    let b = broker_with(&url, &ns, Duration::from_secs(60)).await;
    let _clean = Cleanup::on(&url, &ns);
    let mut r = Resp::connect(&url);
    let hb = format!("{ns}:__heartbeats__");
    let now = now_ms();
    // 150 workers died long ago with messages on a queue nobody here consumes: their acks
    // sets stay, and so do they in the heartbeats.
    let mut old = vec!["ZADD".to_owned(), hb.clone()];
    for i in 0..150u64 {
        let w = format!("old-{i:03}");
        r.cmd(&["SADD", &format!("{ns}:__acks__.{w}.rr_elsewhere"), "x"]);
        old.push((now - 3_600_000 + i).to_string());
        old.push(w);
    }
    r.cmd(&old);
    // One died in the middle of them, and one died just now, each holding a message of ours.
    for i in 0..2 {
        b.enqueue(Message::new("rr_mine", "a", vec![i.into()]), None)
            .await
            .unwrap();
    }
    let middle = held_by_dead(&mut r, &ns, "middle", "rr_mine", now - 3_600_000 + 100);
    let newest = held_by_dead(&mut r, &ns, "newest", "rr_mine", now - 120_000);
    let queues = ["rr_mine".to_owned(), "rr_mine.DQ".to_owned()];
    let ready = |r: &mut Resp| {
        r.cmd(&["LRANGE", &format!("{ns}:rr_mine"), "0", "-1"])
            .texts()
    };

    b.heartbeat(&queues).await.unwrap();
    assert_eq!(
        ready(&mut r),
        std::slice::from_ref(&newest),
        "the newest dead worker at once"
    );
    let mut beats = 1;
    while ready(&mut r).len() < 2 {
        assert!(
            beats < 10,
            "the worker that died in the middle was never recovered"
        );
        b.heartbeat(&queues).await.unwrap();
        beats += 1;
    }
    assert!(ready(&mut r).contains(&middle));
    eprintln!("recovered after {beats} heartbeats");
    // The others keep their acks sets: nothing of theirs is ours to give back.
    assert_eq!(r.keys(&format!("{ns}:__acks__.old-*")).len(), 150);
    let scores = r.cmd(&["ZCOUNT", &hb, "-inf", &(now - 3_000_000).to_string()]);
    assert!(
        scores.int() >= 150,
        "a dead worker with acks sets left stays: {scores:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_expiry_keeps_up() {
    use workflow::Broker;
    let url = redis_url();
    let ns = namespace();
    let b = RedisBroker::builder(&url)
        .namespace(&ns)
        .dead_message_ttl(Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    let _clean = Cleanup::on(&url, &ns);
    let mut r = Resp::connect(&url);
    let xq = format!("{ns}:rr_x.XQ");
    let old = now_ms() - 7_200_000;
    for batch in 0..25u64 {
        let mut zadd = vec!["ZADD".to_owned(), xq.clone()];
        let mut hset = vec!["HSET".to_owned(), format!("{xq}.msgs")];
        for i in 0..1000u64 {
            let id = format!("dead-{batch}-{i}");
            zadd.push((old + i).to_string());
            zadd.push(id.clone());
            hset.push(id);
            hset.push("{}".into());
        }
        r.cmd(&zadd);
        r.cmd(&hset);
    }
    r.cmd(&["ZADD", &xq, &now_ms().to_string(), "recent"]);
    r.cmd(&["HSET", &format!("{xq}.msgs"), "recent", "{}"]);
    b.heartbeat(&["rr_x".to_owned()]).await.unwrap();
    assert_eq!(r.cmd(&["ZCARD", &xq]).int(), 1, "expired in one heartbeat");
    assert_eq!(r.cmd(&["ZRANGE", &xq, "0", "-1"]).texts(), ["recent"]);
    assert_eq!(r.cmd(&["HLEN", &format!("{xq}.msgs")]).int(), 1);
}
