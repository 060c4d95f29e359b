//! The cost of a workflow task on Redis, counted by Redis itself (INFO commandstats, which
//! also counts the commands run inside scripts) on a private server: 1000 diamonds
//! `a -> {b, c} -> d`, submitted and run by one worker.
//!
//! Targets (DESIGN.md section 8): at most 1.2 client round trips and 10 Redis commands per
//! workflow task, all included (submission, fetches, settlements, heartbeats, idle polls).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{broker_with, eventually, namespace, start, worker, RedisServer, Resp};
use workflow::prelude::*;
use workflow::{Chain, Group, Workflow, WorkflowState};

const WORKFLOWS: usize = 1000;
const TASKS: usize = 4 * WORKFLOWS;

static DONE: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "rb")]
async fn noop(_node: u32) {
    DONE.fetch_add(1, Ordering::AcqRel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_task_costs_few_round_trips_and_commands() {
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = broker_with(&url, &namespace(), Duration::from_secs(60)).await;
    let mut r = Resp::connect(&url);
    let diamond = |i: u32| {
        Workflow::from(
            Chain::new()
                .then(noop::message(4 * i))
                .then(
                    Group::new()
                        .with(noop::message(4 * i + 1))
                        .with(noop::message(4 * i + 2)),
                )
                .then(noop::message(4 * i + 3)),
        )
    };
    // Load the scripts first, so that the count is the steady state.
    diamond(u32::MAX / 8)
        .run(&b)
        .await
        .unwrap()
        .cancel()
        .await
        .unwrap();
    r.cmd(&["CONFIG", "RESETSTAT"]);
    let cpu = r.cpu_seconds();

    let started = std::time::Instant::now();
    let mut handles = Vec::with_capacity(WORKFLOWS);
    for i in 0..WORKFLOWS as u32 {
        handles.push(diamond(i).run(&b).await.unwrap());
    }
    let w = start(worker(b.clone(), &["rb"]).concurrency(32));
    eventually(Duration::from_secs(120), "every task to run", || async {
        DONE.load(Ordering::Acquire) >= TASKS
    })
    .await;
    w.stop().await;
    let elapsed = started.elapsed();
    let calls = r.command_calls();
    let bytes_in = r.info_u64("stats", "total_net_input_bytes");
    let bytes_out = r.info_u64("stats", "total_net_output_bytes");
    let busy = r.script_usec();
    let cpu = r.cpu_seconds() - cpu;

    for h in &handles {
        assert_eq!(h.status().await.unwrap().state, WorkflowState::Succeeded);
    }
    let count = |pred: &dyn Fn(&str) -> bool| -> u64 {
        calls.iter().filter(|(c, _)| pred(c)).map(|(_, n)| n).sum()
    };
    let commands = count(&|c| !c.starts_with("config") && c != "info");
    // Every call of the submitter and the worker is one script call (EVALSHA); nothing else
    // is sent during the run (SCAN and SMEMBERS only follow a dead worker or a lost reply;
    // status reads are plain HMGETs, but none is made during the run).
    let round_trips = count(&|c| matches!(c, "evalsha" | "eval"));
    let per_task = commands as f64 / TASKS as f64;
    let trips = round_trips as f64 / TASKS as f64;
    let mut by_command = calls.clone();
    by_command.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    eprintln!(
        "{WORKFLOWS} diamonds ({TASKS} tasks) in {elapsed:?}: {commands} commands ({per_task:.2} per task), \
         {round_trips} script calls ({trips:.3} per task), {} bytes to Redis and {} from it per task, \
         {:.1} µs of Redis time in scripts and {:.1} µs of Redis CPU per task; by command: {by_command:?}",
        bytes_in / TASKS as u64,
        bytes_out / TASKS as u64,
        busy as f64 / TASKS as f64,
        cpu * 1e6 / TASKS as f64,
    );
    assert!(per_task <= 10.0, "{per_task:.2} Redis commands per task");
    assert!(trips <= 1.2, "{trips:.3} round trips per task");
}
