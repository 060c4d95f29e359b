//! Python's dramatiq and this crate on one Redis: a Python worker runs what Rust enqueued
//! (plain, delayed, a workflow node), a Rust worker runs what Python enqueued (plain, delayed).
//!
//! Needs a Python with dramatiq: `WF_PYTHON` names it (`.ci/run` makes one in a venv), else
//! `python3` is used if it can import dramatiq. Without either, each test says it was skipped
//! and passes:
//!
//! ```sh
//! python3 -m venv /tmp/dq && /tmp/dq/bin/pip install 'dramatiq[redis]==2.2.1'
//! WF_PYTHON=/tmp/dq/bin/python cargo test -p workflow --test redis_interop
//! ```

mod support;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use support::{broker, eventually, redis_url, start, worker, Cleanup, Resp};
use workflow::prelude::*;
use workflow::{Message, Workflow};

const T: Duration = Duration::from_secs(30);

const PYTHON: &str = r#"
import sys, time
import dramatiq, redis
from dramatiq.brokers.redis import RedisBroker

mode, url, ns = sys.argv[1], sys.argv[2], sys.argv[3]
broker = RedisBroker(url=url, namespace=ns)
dramatiq.set_broker(broker)
r = redis.Redis.from_url(url)

@dramatiq.actor(queue_name="py_q", actor_name="py_record")
def py_record(label):
    r.rpush(ns + ":py-log", label)

@dramatiq.actor(queue_name="rs_q", actor_name="rs_record")
def rs_record(label, n):
    raise RuntimeError("declared only to send; the Rust worker runs it")

if mode == "produce":
    rs_record.send("from python", 1)
    rs_record.send_with_options(args=("from python, delayed",), kwargs={"n": 2}, delay=300)
elif mode == "consume":
    want = int(sys.argv[4])
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    w.start()
    deadline = time.time() + 30
    while time.time() < deadline and r.llen(ns + ":py-log") < want:
        time.sleep(0.05)
    w.stop()
"#;

/// The Python to run dramatiq with: `WF_PYTHON` (which must work), or `python3` if it has
/// dramatiq and redis installed.
fn find_python() -> Option<String> {
    if let Ok(p) = std::env::var("WF_PYTHON") {
        return Some(p);
    }
    let ok = Command::new("python3")
        .args(["-c", "import dramatiq, redis"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| "python3".to_owned())
}

fn skip_without_python(test: &str) -> bool {
    if find_python().is_some() {
        return false;
    }
    eprintln!("{test}: SKIPPED, no Python with dramatiq (set WF_PYTHON; see the file's docs)");
    true
}

fn python(args: &[&str]) {
    let python = find_python().expect("checked by skip_without_python");
    let status = Command::new(python)
        .arg("-c")
        .arg(PYTHON)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "python {args:?} failed");
}

static RAN: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());

#[actor(queue = "rs_q")]
async fn rs_record(label: String, n: i64) {
    RAN.lock().unwrap().push((label, n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_runs_what_rust_enqueued() {
    if skip_without_python("python_runs_what_rust_enqueued") {
        return;
    }
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let url = redis_url();
    b.enqueue(
        Message::new("py_q", "py_record", vec![json!("plain")]),
        None,
    )
    .await
    .unwrap();
    b.enqueue(
        Message::new("py_q", "py_record", vec![json!("delayed")]),
        Some(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    Workflow::message(Message::new(
        "py_q",
        "py_record",
        vec![json!("workflow node")],
    ))
    .run(&b)
    .await
    .unwrap();
    let consume = tokio::task::spawn_blocking(move || python(&["consume", &url, &ns, "3"]));
    consume.await.unwrap();
    let ns = b.namespace();
    let mut r = Resp::connect(&redis_url());
    let mut log = r
        .cmd(&["LRANGE", &format!("{ns}:py-log"), "0", "-1"])
        .texts();
    log.sort();
    assert_eq!(log, ["delayed", "plain", "workflow node"]);
    assert_eq!(
        r.cmd(&["HLEN", &format!("{ns}:py_q.msgs")]).int(),
        0,
        "Python acked them"
    );
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:py_q.DQ.msgs")]).int(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_runs_what_python_enqueued() {
    if skip_without_python("rust_runs_what_python_enqueued") {
        return;
    }
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let (url, ns) = (redis_url(), b.namespace().to_owned());
    tokio::task::spawn_blocking(move || python(&["produce", &url, &ns, "0"]))
        .await
        .unwrap();
    let w = start(worker(b.clone(), &["rs_q"]));
    eventually(T, "both messages to run", || async {
        RAN.lock().unwrap().len() == 2
    })
    .await;
    w.stop().await;
    let mut ran = RAN.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        [
            ("from python".to_owned(), 1),
            ("from python, delayed".to_owned(), 2)
        ]
    );
    let s = b.queue_stats("rs_q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (0, 0, 0, 0));
}
