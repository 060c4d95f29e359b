//! The seed's workflow, many times at once with random task durations: every task runs exactly
//! once, and each starts only after all of its predecessors finished.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use support::trees::Rng;
use support::{start, worker};
use workflow::prelude::*;

/// (run, task, started?, sequence number)
static EVENTS: Mutex<Vec<(u32, u8, bool, u64)>> = Mutex::new(Vec::new());
static SEQ: AtomicU64 = AtomicU64::new(0);

async fn step(run: u32, task: u8, micros: u64) {
    EVENTS
        .lock()
        .unwrap()
        .push((run, task, true, SEQ.fetch_add(1, SeqCst)));
    tokio::time::sleep(Duration::from_micros(micros)).await;
    EVENTS
        .lock()
        .unwrap()
        .push((run, task, false, SEQ.fetch_add(1, SeqCst)));
}

#[actor(queue = "seed")]
async fn task1(run: u32, micros: u64, a: String, b: String, c: String) {
    assert_eq!(
        (a.as_str(), b.as_str(), c.as_str()),
        ("arguments", "go", "here")
    );
    step(run, 1, micros).await;
}

macro_rules! tasks {
    ($($name:ident = $n:literal),*) => {$(
        #[actor(queue = "seed")]
        async fn $name(run: u32, micros: u64) {
            step(run, $n, micros).await;
        }
    )*};
}

tasks!(
    task2 = 2,
    task3 = 3,
    task4 = 4,
    task5 = 5,
    task6 = 6,
    task7 = 7,
    task8 = 8
);

/// Each task's predecessors in the seed's workflow.
const PREDECESSORS: [(u8, &[u8]); 8] = [
    (1, &[]),
    (2, &[1]),
    (3, &[1]),
    (4, &[1]),
    (5, &[1, 2]),
    (6, &[1, 4]),
    (7, &[1, 4]),
    (8, &[1, 2, 3, 4, 5, 6, 7]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_runs_every_task_once_after_its_predecessors() {
    const RUNS: u32 = 40;
    let broker = MemoryBroker::new();
    let w = start(worker(broker.clone(), &["seed"]).concurrency(16));
    let mut rng = Rng(0x5EED);
    let mut handles = Vec::new();
    for run in 0..RUNS {
        let mut d = || rng.below(3000);
        let wf = workflow!(chain![
            task1(run, d(), "arguments".into(), "go".into(), "here".into()),
            group![
                chain![task2(run, d()), task5(run, d())],
                task3(run, d()),
                chain![task4(run, d()), group![task6(run, d()), task7(run, d())]],
            ],
            task8(run, d()),
        ]);
        handles.push(wf.run(&broker).await.unwrap());
    }
    for h in &handles {
        h.wait_timeout(Duration::from_secs(30)).await.unwrap();
    }
    w.stop().await;

    let events = EVENTS.lock().unwrap().clone();
    // (run, task) -> (start, finish)
    let mut spans: HashMap<(u32, u8), (Vec<u64>, Vec<u64>)> = HashMap::new();
    for (run, task, started, seq) in events {
        let e = spans.entry((run, task)).or_default();
        if started {
            e.0.push(seq)
        } else {
            e.1.push(seq)
        }
    }
    assert_eq!(
        spans.len(),
        (RUNS * 8) as usize,
        "every task of every run ran"
    );
    for run in 0..RUNS {
        for (task, preds) in PREDECESSORS {
            let (starts, finishes) = &spans[&(run, task)];
            assert_eq!(
                (starts.len(), finishes.len()),
                (1, 1),
                "run {run}: task{task} ran once"
            );
            for p in preds {
                let finished = spans[&(run, *p)].1[0];
                assert!(
                    finished < starts[0],
                    "run {run}: task{task} started before task{p} finished"
                );
            }
        }
    }
}
