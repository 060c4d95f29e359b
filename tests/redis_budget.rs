//! The cost of a workflow task on Redis, counted by Redis itself (INFO commandstats, which
//! also counts the commands run inside scripts) on a private server: diamonds
//! `a -> {b, c} -> d` run by one worker, either 1000 submitted at once (a loaded worker, whose
//! fetches and settlements carry many tasks each) or one after the other (a light load, where
//! every step is a fetch and a settlement of its own, and idle polls add up).
//!
//! Targets (DESIGN.md section 8): at most 1.2 client round trips and 10 Redis commands per
//! workflow task under load, all included (submission, fetches, settlements, heartbeats, idle
//! polls). The light load has no target; its figures are printed. A chain, where nothing can
//! be batched, has the same targets: each step's settlement hands the worker the next step.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{broker_with, eventually, namespace, start, worker, RedisServer, Resp};
use workflow::prelude::*;
use workflow::{Chain, Group, RedisBroker, Workflow, WorkflowHandle, WorkflowState};

static DONE: AtomicUsize = AtomicUsize::new(0);
static DONE_LIGHT: AtomicUsize = AtomicUsize::new(0);
static DONE_CHAIN: AtomicUsize = AtomicUsize::new(0);

#[actor(queue = "rb")]
async fn noop(_node: u32) {
    DONE.fetch_add(1, Ordering::AcqRel);
}

#[actor(queue = "rbl")]
async fn noop_light(_node: u32) {
    DONE_LIGHT.fetch_add(1, Ordering::AcqRel);
}

#[actor(queue = "rbc")]
async fn step(_node: u32) {
    DONE_CHAIN.fetch_add(1, Ordering::AcqRel);
}

fn diamond(i: u32) -> Workflow {
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
}

fn diamond_light(i: u32) -> Workflow {
    Workflow::from(
        Chain::new()
            .then(noop_light::message(4 * i))
            .then(
                Group::new()
                    .with(noop_light::message(4 * i + 1))
                    .with(noop_light::message(4 * i + 2)),
            )
            .then(noop_light::message(4 * i + 3)),
    )
}

/// What Redis counted since the last `CONFIG RESETSTAT`: (commands, script calls) per task,
/// printed with a breakdown by command.
fn report(r: &mut Resp, what: &str, tasks: usize, elapsed: Duration, cpu: f64) -> (f64, f64) {
    let calls = r.command_calls();
    let bytes_in = r.info_u64("stats", "total_net_input_bytes");
    let bytes_out = r.info_u64("stats", "total_net_output_bytes");
    let busy = r.script_usec();
    let cpu = r.cpu_seconds() - cpu;
    let count = |pred: &dyn Fn(&str) -> bool| -> u64 {
        calls.iter().filter(|(c, _)| pred(c)).map(|(_, n)| n).sum()
    };
    let commands = count(&|c| !c.starts_with("config") && c != "info");
    // Every call of the submitter and the worker is one script call (FCALL); nothing else
    // is sent during the run (SCAN and SMEMBERS only follow a dead worker or a lost reply;
    // status reads are plain HMGETs, but none is made during the run).
    let round_trips = count(&|c| matches!(c, "fcall" | "evalsha" | "eval"));
    let per_task = commands as f64 / tasks as f64;
    let trips = round_trips as f64 / tasks as f64;
    let mut by_command = calls.clone();
    by_command.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    eprintln!(
        "{what} ({tasks} tasks) in {elapsed:?}: {commands} commands ({per_task:.2} per task), \
         {round_trips} script calls ({trips:.3} per task), {} bytes to Redis and {} from it per task, \
         {:.1} µs of Redis time in scripts and {:.1} µs of Redis CPU per task; by command: {by_command:?}",
        bytes_in / tasks as u64,
        bytes_out / tasks as u64,
        busy as f64 / tasks as f64,
        cpu * 1e6 / tasks as f64,
    );
    (per_task, trips)
}

async fn succeeded(handles: &[WorkflowHandle]) {
    for h in handles {
        assert_eq!(h.status().await.unwrap().state, WorkflowState::Succeeded);
    }
}

/// Loads the scripts, so that the counts are the steady state.
async fn warm_up(b: &RedisBroker, w: Workflow) {
    w.run(b).await.unwrap().cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_task_costs_few_round_trips_and_commands() {
    const WORKFLOWS: usize = 1000;
    const TASKS: usize = 4 * WORKFLOWS;
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = broker_with(&url, &namespace(), Duration::from_secs(60)).await;
    let mut r = Resp::connect(&url);
    warm_up(&b, diamond(u32::MAX / 8)).await;
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
    let (per_task, trips) = report(
        &mut r,
        &format!("{WORKFLOWS} diamonds at once"),
        TASKS,
        started.elapsed(),
        cpu,
    );
    succeeded(&handles).await;
    assert!(per_task <= 10.0, "{per_task:.2} Redis commands per task");
    assert!(trips <= 1.2, "{trips:.3} round trips per task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workflow_at_a_time_costs_are_printed() {
    const WORKFLOWS: usize = 200;
    const TASKS: usize = 4 * WORKFLOWS;
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = broker_with(&url, &namespace(), Duration::from_secs(60)).await;
    let mut r = Resp::connect(&url);
    warm_up(&b, diamond_light(u32::MAX / 8)).await;
    let w = start(worker(b.clone(), &["rbl"]).concurrency(32));
    r.cmd(&["CONFIG", "RESETSTAT"]);
    let cpu = r.cpu_seconds();

    let started = std::time::Instant::now();
    let mut handles = Vec::with_capacity(WORKFLOWS);
    for i in 0..WORKFLOWS as u32 {
        handles.push(diamond_light(i).run(&b).await.unwrap());
        // Waits without asking Redis: the tasks count themselves.
        eventually(Duration::from_secs(20), "the diamond to finish", || async {
            DONE_LIGHT.load(Ordering::Acquire) >= 4 * (i as usize + 1)
        })
        .await;
    }
    let elapsed = started.elapsed();
    w.stop().await;
    report(
        &mut r,
        &format!("{WORKFLOWS} diamonds one at a time"),
        TASKS,
        elapsed,
        cpu,
    );
    succeeded(&handles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_step_costs_one_round_trip() {
    const STEPS: usize = 300;
    let server = RedisServer::start_in_memory();
    let url = server.url();
    let b = broker_with(&url, &namespace(), Duration::from_secs(60)).await;
    let mut r = Resp::connect(&url);
    warm_up(&b, Workflow::chain([step::message(0)])).await;
    let chain = Workflow::chain((0..STEPS as u32).map(step::message));
    r.cmd(&["CONFIG", "RESETSTAT"]);
    let cpu = r.cpu_seconds();

    let started = std::time::Instant::now();
    let h = chain.run(&b).await.unwrap();
    let w = start(worker(b.clone(), &["rbc"]).concurrency(8));
    eventually(Duration::from_secs(60), "every step to run", || async {
        DONE_CHAIN.load(Ordering::Acquire) >= STEPS
    })
    .await;
    let elapsed = started.elapsed();
    w.stop().await;
    let (per_task, trips) = report(&mut r, &format!("a chain of {STEPS}"), STEPS, elapsed, cpu);
    succeeded(&[h]).await;
    assert!(per_task <= 10.0, "{per_task:.2} Redis commands per step");
    assert!(trips <= 1.2, "{trips:.3} round trips per step");
}
