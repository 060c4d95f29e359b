//! The Redis broker speaks dramatiq's wire format and key layout: what it writes is where and
//! how dramatiq writes it, what dramatiq writes runs on our worker, delays go through `X.DQ`
//! with `eta`, dead letters land in `X.XQ`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::log::{ran, record};
use support::{
    broker, broker_with, eventually, namespace, redis_url, start, worker, Cleanup, RedisServer,
    Resp,
};
use workflow::prelude::*;
use workflow::Message;

const T: Duration = Duration::from_secs(20);

#[actor(queue = "rw_in")]
async fn take(tag: String, n: i64) {
    record(&tag, format!("take {n}"));
}

#[actor(queue = "rw_delay")]
async fn stamp(tag: String, what: String) {
    record(&tag, what);
}

#[actor(
    queue = "rw_dead",
    max_retries = 2,
    min_backoff = "10ms",
    max_backoff = "20ms"
)]
async fn doomed(tag: String) -> Result<(), String> {
    record(&tag, "doomed".into());
    Err("doomed on purpose".into())
}

fn payload(r: &mut Resp, ns: &str, queue: &str, receipt: &str) -> Value {
    let raw = r
        .cmd(&["HGET", &format!("{ns}:{queue}.msgs"), receipt])
        .text();
    serde_json::from_str(&raw).unwrap()
}

fn assert_dramatiq_shape(m: &Value, receipt: &str) {
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "actor_name",
            "args",
            "kwargs",
            "message_id",
            "message_timestamp",
            "options",
            "queue_name"
        ],
        "exactly dramatiq's seven keys: {m}"
    );
    assert_eq!(m["options"]["redis_message_id"], receipt);
    assert!(m["message_timestamp"].is_u64(), "{m}");
    assert!(
        m["message_id"].as_str().is_some_and(|id| id.len() == 36),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_messages_are_in_dramatiqs_keys_and_format() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let mut m = Message::new("rw_fmt", "some_actor", vec![json!(1), json!("x")]);
    m.options.insert("retries".into(), json!(3));
    b.enqueue(m.clone(), None).await.unwrap();
    b.enqueue(m.clone(), Some(Duration::from_secs(60)))
        .await
        .unwrap();

    let ready = r
        .cmd(&["LRANGE", &format!("{ns}:rw_fmt"), "0", "-1"])
        .texts();
    assert_eq!(ready.len(), 1);
    let now = Message::new("q", "a", vec![]).timestamp_millis();
    let p = payload(&mut r, &ns, "rw_fmt", &ready[0]);
    assert_dramatiq_shape(&p, &ready[0]);
    assert_eq!(p["queue_name"], "rw_fmt");
    assert_eq!(p["actor_name"], "some_actor");
    assert_eq!(p["args"], json!([1, "x"]));
    assert_eq!(p["kwargs"], json!({}));
    assert_eq!(p["options"]["retries"], 3, "options are kept");
    assert_eq!(p["message_id"], m.message_id.as_str());
    assert!(p["options"].get("eta").is_none());

    let delayed = r
        .cmd(&["LRANGE", &format!("{ns}:rw_fmt.DQ"), "0", "-1"])
        .texts();
    assert_eq!(delayed.len(), 1);
    assert_ne!(delayed[0], ready[0], "a new redis_message_id per enqueue");
    let d = payload(&mut r, &ns, "rw_fmt.DQ", &delayed[0]);
    assert_dramatiq_shape(&d, &delayed[0]);
    assert_eq!(d["queue_name"], "rw_fmt.DQ");
    let eta = d["options"]["eta"].as_u64().unwrap();
    assert!(
        eta >= now + 59_000 && eta <= now + 61_000,
        "eta {eta}, now {now}"
    );

    let stats = b.queue_stats("rw_fmt").await.unwrap();
    assert_eq!(
        (stats.ready, stats.delayed, stats.in_flight, stats.dead),
        (1, 1, 0, 0)
    );

    // Fetching moves the receipt into this worker's acks set, as dramatiq does.
    let got = b.fetch("rw_fmt", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receipt, ready[0]);
    let acks = format!("{ns}:__acks__.{}.rw_fmt", b.worker_id());
    assert_eq!(r.cmd(&["SMEMBERS", &acks]).texts(), ready);
    assert!(
        r.cmd(&["ZSCORE", &format!("{ns}:__heartbeats__"), b.worker_id()]) != support::Reply::Nil
    );
    assert_eq!(b.queue_stats("rw_fmt").await.unwrap().in_flight, 1);
    b.settle(&[workflow::Settlement::Ack {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(r.cmd(&["SCARD", &acks]).int(), 0);
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rw_fmt.msgs")]).int(), 0);

    assert!(matches!(
        b.enqueue(Message::new("bad queue", "a", vec![]), None)
            .await,
        Err(workflow::Error::InvalidQueueName(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_written_the_way_dramatiq_writes_them_run() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    let raw = [
        // int timestamp, as dramatiq writes it
        json!({"queue_name":"rw_in","actor_name":"take","args":[ns, 1],"kwargs":{},
               "options":{"redis_message_id":"py-1"},"message_id":"6f0c1d2e-0000-4000-8000-000000000001",
               "message_timestamp":1717526084640u64}),
        // float timestamp (dramatiq-workflow), extra options, keyword arguments
        json!({"queue_name":"rw_in","actor_name":"take","args":[ns],"kwargs":{"n":2},
               "options":{"redis_message_id":"py-2","retries":0,"traceback":null,"foo":{"bar":[1]}},
               "message_id":"6f0c1d2e-0000-4000-8000-000000000002","message_timestamp":1717526084640.123}),
        // a Python-style uuid4 receipt
        json!({"queue_name":"rw_in","actor_name":"take","args":[ns, 3],"kwargs":{},
               "options":{"redis_message_id":"0b9e5c41-8c8d-4c4e-9d5b-4f7f2b0d3e11"},
               "message_id":"6f0c1d2e-0000-4000-8000-000000000003","message_timestamp":1717526084641u64}),
    ];
    for m in &raw {
        let rid = m["options"]["redis_message_id"].as_str().unwrap();
        r.cmd(&["HSET", &format!("{ns}:rw_in.msgs"), rid, &m.to_string()]);
        r.cmd(&["RPUSH", &format!("{ns}:rw_in"), rid]);
    }
    let w = start(worker(b.clone(), &["rw_in"]));
    eventually(T, "the three messages to run", || async {
        ran(&ns).len() == 3
    })
    .await;
    eventually(T, "the queue to be empty", || async {
        let s = b.queue_stats("rw_in").await.unwrap();
        s.ready == 0 && s.in_flight == 0
    })
    .await;
    w.stop().await;
    let mut what: Vec<String> = ran(&ns).into_iter().map(|(w, _)| w).collect();
    what.sort();
    assert_eq!(what, ["take 1", "take 2", "take 3"]);
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rw_in.msgs")]).int(), 0);
    assert_eq!(r.cmd(&["LLEN", &format!("{ns}:rw_in")]).int(), 0);
    assert_eq!(b.queue_stats("rw_in").await.unwrap().dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_wait_on_the_delay_queue_and_run_no_earlier_than_their_delay() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let delay = Duration::from_millis(1500);
    let sent = Instant::now();
    stamp::message(ns.clone(), "late".into())
        .with_delay(delay)
        .send(&b)
        .await
        .unwrap();
    stamp::message(ns.clone(), "now".into())
        .send(&b)
        .await
        .unwrap();
    let mut r = Resp::connect(&redis_url());
    assert_eq!(r.cmd(&["LLEN", &format!("{ns}:rw_delay.DQ")]).int(), 1);
    assert_eq!(r.cmd(&["LLEN", &format!("{ns}:rw_delay")]).int(), 1);

    let w = start(worker(b.clone(), &["rw_delay"]));
    eventually(T, "both messages to run", || async { ran(&ns).len() == 2 }).await;
    w.stop().await;
    let order = ran(&ns);
    assert_eq!(order[0].0, "now");
    assert_eq!(order[1].0, "late");
    let waited = order[1].1 - sent;
    // (An eta is a whole millisecond: the delay may end up to 1 ms early.)
    assert!(
        waited >= delay - Duration::from_millis(1),
        "ran after {waited:?}, before its delay of {delay:?}"
    );
    let s = b.queue_stats("rw_delay").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_through_the_delay_queue_then_dead_lettered() {
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    doomed::message(ns.clone()).send(&b).await.unwrap();
    // An unknown actor and an undecodable payload are dead-lettered too, never a crash.
    b.enqueue(Message::new("rw_dead", "no_such_actor", vec![]), None)
        .await
        .unwrap();
    r.cmd(&[
        "HSET",
        &format!("{ns}:rw_dead.msgs"),
        "garbage-1",
        "{not json",
    ]);
    r.cmd(&["RPUSH", &format!("{ns}:rw_dead"), "garbage-1"]);

    let w = start(worker(b.clone(), &["rw_dead"]));
    eventually(T, "three dead letters", || async {
        b.queue_stats("rw_dead").await.unwrap().dead == 3
    })
    .await;
    w.stop().await;
    assert_eq!(ran(&ns).len(), 3, "one attempt and two retries");

    let xq = format!("{ns}:rw_dead.XQ");
    let dead = r.cmd(&["ZRANGE", &xq, "0", "-1"]).texts();
    assert_eq!(dead.len(), 3);
    assert!(dead.contains(&"garbage-1".to_owned()));
    let stored: Vec<String> = dead
        .iter()
        .map(|id| r.cmd(&["HGET", &format!("{xq}.msgs"), id]).text())
        .collect();
    assert!(
        stored.contains(&"{not json".to_owned()),
        "the payload as it was stored"
    );
    let retried: Value = stored
        .iter()
        .filter_map(|s| serde_json::from_str::<Value>(s).ok())
        .find(|m| m["actor_name"] == "doomed")
        .unwrap();
    assert_eq!(retried["options"]["retries"], 2);
    assert_eq!(retried["options"]["traceback"], "doomed on purpose");
    assert_eq!(
        retried["queue_name"], "rw_dead",
        "the last retry ran from the queue itself"
    );
    let score = r
        .cmd(&["ZSCORE", &xq, "garbage-1"])
        .text()
        .parse::<f64>()
        .unwrap();
    assert!(score > 1.7e12, "scored by time in ms");
    let s = b.queue_stats("rw_dead").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight), (0, 0, 0));
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rw_dead.msgs")]).int(), 0);
    assert_eq!(r.cmd(&["HLEN", &format!("{ns}:rw_dead.DQ.msgs")]).int(), 0);
}

fn ids(ds: &[workflow::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.receipt.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_that_fails_changes_nothing_and_the_others_go_through_alone() {
    use workflow::{Broker, Settlement, Workflow};
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    for i in 0..4 {
        b.enqueue(Message::new("rw_atomic", "plain", vec![json!(i)]), None)
            .await
            .unwrap();
    }
    let wf = Workflow::chain([
        Workflow::message(Message::new("rw_atomic", "first", vec![])),
        Workflow::message(Message::new("rw_atomic", "second", vec![])),
    ])
    .run(&b)
    .await
    .unwrap();
    let got = b.fetch("rw_atomic", 10).await.unwrap();
    assert_eq!(got.len(), 5);
    let node = Message::decode(&got[4].payload).unwrap();
    assert_eq!(node.actor_name, "first");
    // Something else than dramatiq's sorted set where the dead letters go.
    r.cmd(&["SET", &format!("{ns}:rw_atomic.XQ"), "not a zset"]);

    let q = got[0].queue.clone();
    let retry = Settlement::Replace {
        queue: q.clone(),
        receipt: got[0].receipt.clone(),
        message: Message::decode(&got[0].payload).unwrap(),
        delay: None,
    };
    let dead = Settlement::DeadLetter {
        queue: q.clone(),
        receipt: got[1].receipt.clone(),
        reason: "gave up".into(),
        workflow: None,
    };
    let requeue = Settlement::Requeue {
        queue: q.clone(),
        receipt: got[2].receipt.clone(),
    };
    let ack = Settlement::Ack {
        queue: q.clone(),
        receipt: got[3].receipt.clone(),
    };
    let complete = Settlement::Complete {
        queue: q.clone(),
        receipt: got[4].receipt.clone(),
        workflow: node.workflow().unwrap(),
    };
    let acks = format!("{ns}:__acks__.{}.rw_atomic", b.worker_id());
    let snapshot = |r: &mut Resp| {
        let mut members = r.cmd(&["SMEMBERS", &acks]).texts();
        members.sort();
        (
            members,
            r.cmd(&["LLEN", &format!("{ns}:rw_atomic")]).int(),
            r.cmd(&["HLEN", &format!("{ns}:rw_atomic.msgs")]).int(),
            r.cmd(&["HGETALL", &format!("{ns}:wf:{{{}}}", wf.id())]),
        )
    };
    let before = snapshot(&mut r);
    assert_eq!(before.0.len(), 5);
    let batch = [
        retry.clone(),
        complete.clone(),
        dead.clone(),
        requeue.clone(),
        ack.clone(),
    ];
    let err = b.settle(&batch).await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(
        snapshot(&mut r),
        before,
        "the failed batch changed something"
    );
    // Sent again, it fails again, still without a trace.
    assert!(b.settle(&batch).await.is_err());
    assert_eq!(snapshot(&mut r), before);

    // One by one, as the worker does after a failed batch: all but the dead letter go through.
    b.settle(std::slice::from_ref(&retry)).await.unwrap();
    b.settle(std::slice::from_ref(&complete)).await.unwrap();
    assert!(b.settle(std::slice::from_ref(&dead)).await.is_err());
    b.settle(std::slice::from_ref(&requeue)).await.unwrap();
    b.settle(std::slice::from_ref(&ack)).await.unwrap();
    assert_eq!(
        r.cmd(&["SMEMBERS", &acks]).texts(),
        [got[1].receipt.clone()]
    );
    let again = b.fetch("rw_atomic", 10).await.unwrap();
    let mut names: Vec<String> = again
        .iter()
        .map(|d| {
            let m = Message::decode(&d.payload).unwrap();
            format!(
                "{}{}",
                m.actor_name,
                m.args.first().map_or(String::new(), |a| a.to_string())
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["plain0", "plain2", "second"],
        "the retry, the requeued message and the workflow's next step"
    );
    assert!(
        !ids(&again).contains(&got[0].receipt),
        "the retry is a new copy"
    );

    // Once the key is fixed, the dead letter goes through too.
    r.cmd(&["DEL", &format!("{ns}:rw_atomic.XQ")]);
    b.settle(&[dead]).await.unwrap();
    assert_eq!(b.queue_stats("rw_atomic").await.unwrap().dead, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_queues_are_not_queues() {
    use workflow::{Broker, Error, Workflow};
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let mut r = Resp::connect(&redis_url());
    for q in ["rw_x.XQ", "", "has space", "9lives"] {
        assert!(
            matches!(
                b.enqueue(Message::new(q, "a", vec![]), None).await,
                Err(Error::InvalidQueueName(_))
            ),
            "{q:?}"
        );
    }
    assert!(matches!(
        b.fetch("rw_x.XQ", 1).await,
        Err(Error::InvalidQueueName(_))
    ));
    assert!(matches!(
        Workflow::message(Message::new("rw_x.XQ", "a", vec![]))
            .run(&b)
            .await,
        Err(Error::InvalidQueueName(_))
    ));
    assert!(
        r.keys(&format!("{}:*", b.namespace())).is_empty(),
        "nothing written"
    );
    // A delay queue is a queue (dramatiq enqueues there directly too).
    b.enqueue(Message::new("rw_x.DQ", "a", vec![]), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_receipts_that_look_like_a_workflow_nodes_are_delivered() {
    use workflow::Broker;
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    // redis_message_ids another producer chose: none is exactly "<node>:<hex nonce>...@<id>".
    let rids = [
        "42@host-7",
        "1:not-hex@host",
        "007:abc@host",
        "3:abc@has space",
        "12:@x",
    ];
    for (i, rid) in rids.iter().enumerate() {
        let m = json!({"queue_name":"rw_foreign","actor_name":"take","args":[ns, i],"kwargs":{},
               "options":{"redis_message_id":rid},
               "message_id":format!("6f0c1d2e-0000-4000-8000-00000000000{i}"),
               "message_timestamp":1717526084640u64});
        r.cmd(&[
            "HSET",
            &format!("{ns}:rw_foreign.msgs"),
            rid,
            &m.to_string(),
        ]);
        r.cmd(&["RPUSH", &format!("{ns}:rw_foreign"), rid]);
    }
    let got = b.fetch("rw_foreign", 10).await.unwrap();
    assert_eq!(ids(&got), rids, "every one is delivered");
    assert_eq!(
        r.cmd(&["HLEN", &format!("{ns}:rw_foreign.msgs")]).int(),
        rids.len() as i64,
        "none is deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_fails_after_taking_ids_puts_them_back() {
    use workflow::Broker;
    let b = broker().await;
    let _clean = Cleanup::new(b.namespace());
    let ns = b.namespace().to_owned();
    let mut r = Resp::connect(&redis_url());
    for i in 0..3 {
        b.enqueue(Message::new("rw_back", "plain", vec![json!(i)]), None)
            .await
            .unwrap();
    }
    let list = format!("{ns}:rw_back");
    let before = r.cmd(&["LRANGE", &list, "0", "-1"]).texts();
    assert_eq!(before.len(), 3);
    // The acks set is not a set: the fetch fails, and the queue is as it was.
    let acks = format!("{ns}:__acks__.{}.rw_back", b.worker_id());
    r.cmd(&["SET", &acks, "not a set"]);
    let err = b.fetch("rw_back", 2).await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(r.cmd(&["LRANGE", &list, "0", "-1"]).texts(), before);
    assert_eq!(r.cmd(&["GET", &acks]).text(), "not a set");
    r.cmd(&["DEL", &acks]);
    // The payloads are not in a hash: the same.
    let msgs = format!("{ns}:rw_back.msgs");
    r.cmd(&["RENAME", &msgs, &format!("{msgs}.saved")]);
    r.cmd(&["SET", &msgs, "not a hash"]);
    let err = b.fetch("rw_back", 2).await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(r.cmd(&["LRANGE", &list, "0", "-1"]).texts(), before);
    r.cmd(&["RENAME", &format!("{msgs}.saved"), &msgs]);
    // The heartbeats are not a sorted set (a fetch records this worker's heartbeat).
    let hb = format!("{ns}:__heartbeats__");
    r.cmd(&["DEL", &hb]);
    r.cmd(&["SET", &hb, "not a zset"]);
    let fresh = support::broker_with(&redis_url(), &ns, Duration::from_secs(60)).await;
    assert!(fresh.fetch("rw_back", 2).await.is_err());
    assert_eq!(r.cmd(&["LRANGE", &list, "0", "-1"]).texts(), before);
    r.cmd(&["DEL", &hb]);
    // Fixed, the ids come out in their order.
    assert_eq!(ids(&b.fetch("rw_back", 10).await.unwrap()), before);
    assert!(b.fetch("rw_back", 10).await.unwrap().is_empty());
    // A queue key that is not a list fails before anything is written.
    r.cmd(&["SET", &format!("{ns}:rw_notalist"), "x"]);
    assert!(b.fetch("rw_notalist", 1).await.is_err());
    assert!(r.keys(&format!("{ns}:__acks__.*.rw_notalist")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_library_is_loaded_again_when_redis_lost_it() {
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = broker_with(&url, &namespace(), Duration::from_secs(60)).await;
    let mut r = Resp::connect(&url);
    let libraries = |r: &mut Resp| match r.cmd(&["FUNCTION", "LIST"]) {
        support::Reply::Array(libs) => libs.len(),
        other => panic!("FUNCTION LIST: {other:?}"),
    };
    assert_eq!(libraries(&mut r), 1, "loaded when the broker connected");
    b.enqueue(Message::new("rw_lib", "a", vec![]), None)
        .await
        .unwrap();
    // As after a restart without persistence.
    r.cmd(&["FUNCTION", "FLUSH"]);
    assert_eq!(libraries(&mut r), 0);
    let trips = b.round_trips();
    let got = b.fetch("rw_lib", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        b.round_trips() - trips,
        1,
        "reloading is part of the request"
    );
    assert_eq!(libraries(&mut r), 1);
    b.settle(&[workflow::Settlement::Ack {
        queue: got[0].queue.clone(),
        receipt: got[0].receipt.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(b.queue_stats("rw_lib").await.unwrap(), Default::default());
}
