//! Throughput and cost benchmark of `workflow` on Redis, with no-op actors.
//!
//! ```sh
//! cargo run --release --example bench -- --workload diamond            # private redis-server
//! cargo run --release --example bench -- --workload chain --url redis://127.0.0.1:6390 --runs 3
//! ```
//!
//! Workloads: `diamond` (the seed's 8-task workflow × n, submitted at once), `fanout`
//! (`Chain(Group(n), t)`), `chain` (n steps; mean hop latency), `plain` (n independent
//! messages, no workflow), `two_stage` (`Chain(Group(n), Group(n), t)`; peak Redis memory).
//!
//! Each run starts `--processes` worker processes (this binary, `bench worker ...`) on a fresh
//! namespace, snapshots the counters, submits everything at once from this process, waits until
//! the queue's message hash is empty and every task reported, snapshots again, stops the workers
//! and deletes the namespace's keys. It prints one JSON line per run:
//!
//! - `wall_s`: first enqueue to the end of the last task (actor clocks), `tasks_per_s`,
//!   `workflows_per_s`, `hop_ms` (chain: mean time from the end of one step to the start of
//!   the next), `first_task_latency_ms` (first enqueue to the start of the first task);
//! - per task: `round_trips_per_task` (requests our processes sent to Redis, a script call
//!   being one, counted in our client: `RedisBroker::round_trips`), `redis_cmds_per_task`
//!   (INFO commandstats, including the commands run inside scripts), `redis_cpu_ms_per_task`
//!   (INFO cpu), `redis_in_bytes_per_task` (INFO stats), `worker_cpu_ms_per_task` and
//!   `driver_cpu_ms_per_task` (/proc);
//! - two_stage: `redis_mem_peak_bytes`, the peak of `used_memory` during the run over the
//!   baseline, and `redis_mem_state_bytes`, what the submitted workflow takes before any worker
//!   runs (measured in a separate submission that is deleted again).
//!
//! The benchmark's own requests (INFO, the HLEN polls) go over a separate connection and are
//! subtracted. Without `--url`, a private `redis-server` is started on a free port and stopped at
//! the end. Point `--url` only at a Redis of your own: its counters are read for the whole server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use workflow::prelude::*;
use workflow::{RedisBroker, Workflow};

// ---------------------------------------------------------------------------------------------
// The actors: no-ops that note, in this process, that they ran.

static DONE: AtomicU64 = AtomicU64::new(0);
static LAST_END_US: AtomicU64 = AtomicU64::new(0);
static FIRST_START_US: AtomicU64 = AtomicU64::new(u64::MAX);
static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn task_start() -> u64 {
    let start = now_us();
    FIRST_START_US.fetch_min(start, Ordering::Relaxed);
    start
}

fn task_done() -> u64 {
    let end = now_us();
    DONE.fetch_add(1, Ordering::Relaxed);
    LAST_END_US.fetch_max(end, Ordering::Relaxed);
    end
}

/// Does nothing.
#[actor]
async fn noop() {
    task_start();
    task_done();
}

/// A chain step: notes when it started and ended.
#[actor]
async fn step(i: u32) {
    let start = task_start();
    let end = task_done();
    STEPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((i, start, end));
}

// ---------------------------------------------------------------------------------------------
// Command line.

#[derive(Clone, Debug)]
struct Opts {
    workload: String,
    n: Option<usize>,
    concurrency: usize,
    processes: usize,
    threads: Option<usize>,
    prefetch: Option<usize>,
    poll_ms: u64,
    url: Option<String>,
    namespace: Option<String>,
    runs: usize,
    timeout_s: u64,
}

const USAGE: &str = "\
usage: bench [--workload diamond|fanout|chain|plain|two_stage] [--n N] [--concurrency C]
             [--processes P] [--threads T] [--prefetch F] [--poll-ms MS] [--url URL]
             [--runs K] [--timeout S]
       bench worker --url URL --namespace NS [--concurrency C] [--threads T] [--prefetch F]
             [--poll-ms MS]          (started by the benchmark itself)

  --n          size: workflows (diamond), group size (fanout, two_stage), steps (chain),
               messages (plain); default 1000, plain 20000
  --concurrency tasks at once per worker process (default 32)
  --processes  worker processes (default 1)
  --threads    tokio threads per worker process (default: cores / processes, at least 1)
  --prefetch   messages a worker process holds (default: the worker's, 2 x concurrency)
  --poll-ms    longest idle pause between fetches (default 100; the worker's default is 1000)
  --url        a Redis of your own (default: start a private redis-server on a free port)
  --runs       repetitions (default 1), each with fresh workers and namespace
  --timeout    seconds one run may take at most (default 180)";

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        workload: "diamond".into(),
        n: None,
        concurrency: 32,
        processes: 1,
        threads: None,
        prefetch: None,
        poll_ms: 100,
        url: None,
        namespace: None,
        runs: 1,
        timeout_s: 180,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        }
        match flag.as_str() {
            "--workload" => o.workload = value()?,
            "--n" => o.n = Some(num(flag, value()?)?),
            "--concurrency" => o.concurrency = num(flag, value()?)?,
            "--processes" => o.processes = num(flag, value()?)?,
            "--threads" => o.threads = Some(num(flag, value()?)?),
            "--prefetch" => o.prefetch = Some(num(flag, value()?)?),
            "--poll-ms" => o.poll_ms = num(flag, value()?)?,
            "--url" => o.url = Some(value()?),
            "--namespace" => o.namespace = Some(value()?),
            "--runs" => o.runs = num(flag, value()?)?,
            "--timeout" => o.timeout_s = num(flag, value()?)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if !["diamond", "fanout", "chain", "plain", "two_stage"].contains(&o.workload.as_str()) {
        return Err(format!("unknown workload `{}`", o.workload));
    }
    if o.processes == 0 || o.concurrency == 0 || o.runs == 0 {
        return Err("--processes, --concurrency and --runs must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (is_worker, rest) = match args.first().map(String::as_str) {
        Some("worker") => (true, &args[1..]),
        _ => (false, &args[..]),
    };
    let opts = match parse_opts(rest) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let threads = opts.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / if is_worker { opts.processes } else { 1 }).max(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = if is_worker {
        rt.block_on(worker_main(opts, threads))
    } else {
        rt.block_on(driver_main(opts))
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---------------------------------------------------------------------------------------------
// Worker process: runs a Worker; answers `stats` on stdin with one JSON line; `exit` or the end
// of stdin stops it.

async fn worker_main(o: Opts, _threads: usize) -> AnyResult<()> {
    let url = o.url.clone().ok_or("worker: --url is required")?;
    let ns = o
        .namespace
        .clone()
        .ok_or("worker: --namespace is required")?;
    let broker = RedisBroker::builder(url).namespace(ns).connect().await?;
    let mut worker = Worker::new(broker.clone())
        .concurrency(o.concurrency)
        .max_poll_interval(Duration::from_millis(o.poll_ms.max(1)))
        .grace_period(Duration::from_secs(5));
    if let Some(p) = o.prefetch {
        worker = worker.prefetch(p);
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        stop_rx.await.ok();
    }));
    let rt_broker = broker.clone();
    std::thread::spawn(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "ready");
        let _ = out.flush();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "stats" => {
                    let steps = STEPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let v = json!({
                        "rt": rt_broker.round_trips(),
                        "done": DONE.load(Ordering::Relaxed),
                        "last_us": LAST_END_US.load(Ordering::Relaxed),
                        "first_us": FIRST_START_US.load(Ordering::Relaxed),
                        "steps": steps,
                    });
                    let _ = writeln!(out, "{v}");
                    let _ = out.flush();
                }
                "reset" => {
                    FIRST_START_US.store(u64::MAX, Ordering::Relaxed);
                    let _ = writeln!(out, "ok");
                    let _ = out.flush();
                }
                "exit" => break,
                _ => {}
            }
        }
        let _ = stop_tx.send(());
        // The driver is gone or done. Should the graceful stop hang (its Redis gone, the worker
        // retrying its last settlements), leave anyway after a while.
        std::thread::sleep(Duration::from_secs(15));
        std::process::exit(0);
    });
    running.await??;
    Ok(())
}

struct WorkerProc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl WorkerProc {
    fn start(o: &Opts, url: &str, ns: &str) -> AnyResult<WorkerProc> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("worker")
            .args(["--url", url, "--namespace", ns])
            .args(["--concurrency", &o.concurrency.to_string()])
            .args(["--processes", &o.processes.to_string()])
            .args(["--poll-ms", &o.poll_ms.to_string()]);
        if let Some(t) = o.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        if let Some(p) = o.prefetch {
            cmd.args(["--prefetch", &p.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut w = WorkerProc {
            child,
            stdin,
            stdout,
        };
        let line = w.read_line()?;
        if line.trim() != "ready" {
            return Err(format!("worker said `{line}` instead of ready").into());
        }
        Ok(w)
    }

    fn read_line(&mut self) -> AnyResult<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err("a worker process exited".into());
        }
        Ok(line)
    }

    /// Forgets the first task start seen so far (the warm-up's).
    fn reset(&mut self) -> AnyResult<()> {
        writeln!(self.stdin, "reset")?;
        self.stdin.flush()?;
        self.read_line()?;
        Ok(())
    }

    fn stats(&mut self) -> AnyResult<Value> {
        writeln!(self.stdin, "stats")?;
        self.stdin.flush()?;
        Ok(serde_json::from_str(&self.read_line()?)?)
    }

    fn cpu_s(&self) -> f64 {
        proc_cpu_s(&format!("/proc/{}/stat", self.child.id()))
    }

    fn stop(mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Our own child, by its handle (its PID).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// user + system CPU seconds of a process (all its threads), from /proc/<pid>/stat.
fn proc_cpu_s(path: &str) -> f64 {
    const TICKS_PER_S: f64 = 100.0; // USER_HZ on Linux
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name.
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_S
}

// ---------------------------------------------------------------------------------------------
// A minimal blocking RESP client for the benchmark's own requests, so that what it sends is
// known to the byte and kept apart from the system's connections.

#[derive(Debug)]
enum Resp {
    Simple,
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

struct Meter {
    stream: BufReader<TcpStream>,
    sent_bytes: u64,
}

impl Meter {
    fn connect(addr: &str) -> AnyResult<Meter> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Meter {
            stream: BufReader::new(stream),
            sent_bytes: 0,
        })
    }

    fn cmd(&mut self, args: &[&str]) -> AnyResult<Resp> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.stream.get_mut().write_all(&buf)?;
        self.sent_bytes += buf.len() as u64;
        self.read()
    }

    fn read(&mut self) -> AnyResult<Resp> {
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Resp::Simple,
            "-" => return Err(format!("redis: {rest}").into()),
            ":" => Resp::Int(rest.parse()?),
            "$" => {
                let len: i64 = rest.parse()?;
                if len < 0 {
                    Resp::Bulk(None)
                } else {
                    let mut data = vec![0; len as usize + 2];
                    self.stream.read_exact(&mut data)?;
                    data.truncate(len as usize);
                    Resp::Bulk(Some(data))
                }
            }
            "*" => {
                let len: i64 = rest.parse()?;
                let mut items = Vec::new();
                for _ in 0..len.max(0) {
                    items.push(self.read()?);
                }
                Resp::Array(items)
            }
            _ => return Err(format!("unexpected reply `{line}`").into()),
        })
    }

    fn int(&mut self, args: &[&str]) -> AnyResult<i64> {
        match self.cmd(args)? {
            Resp::Int(n) => Ok(n),
            other => Err(format!("expected an integer, got {other:?}").into()),
        }
    }

    fn info(&mut self, section: &str) -> AnyResult<Info> {
        match self.cmd(&["INFO", section])? {
            Resp::Bulk(Some(text)) => Ok(Info::parse(&String::from_utf8_lossy(&text))),
            other => Err(format!("INFO: unexpected reply {other:?}").into()),
        }
    }

    /// Deletes every key matching `pattern`.
    fn delete_matching(&mut self, pattern: &str) -> AnyResult<usize> {
        let mut cursor = "0".to_owned();
        let mut deleted = 0;
        loop {
            let Resp::Array(mut reply) =
                self.cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])?
            else {
                return Err("SCAN: unexpected reply".into());
            };
            let keys = match reply.pop() {
                Some(Resp::Array(keys)) => keys,
                _ => Vec::new(),
            };
            cursor = match reply.pop() {
                Some(Resp::Bulk(Some(c))) => String::from_utf8_lossy(&c).into_owned(),
                _ => "0".into(),
            };
            let keys: Vec<String> = keys
                .into_iter()
                .filter_map(|k| match k {
                    Resp::Bulk(Some(k)) => Some(String::from_utf8_lossy(&k).into_owned()),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                let mut args = vec!["UNLINK"];
                args.extend(keys.iter().map(String::as_str));
                deleted += self.int(&args)? as usize;
            }
            if cursor == "0" {
                return Ok(deleted);
            }
        }
    }
}

/// The fields of an INFO reply that the benchmark reads.
#[derive(Clone, Debug, Default)]
struct Info {
    calls: std::collections::BTreeMap<String, u64>,
    in_bytes: u64,
    cpu_s: f64,
    used_memory: u64,
}

impl Info {
    fn parse(text: &str) -> Info {
        let mut info = Info::default();
        let mut cpu = 0.0;
        for line in text.lines() {
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            if let Some(name) = k.strip_prefix("cmdstat_") {
                let calls = v
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                info.calls.insert(name.to_owned(), calls);
                continue;
            }
            match k {
                "total_net_input_bytes" => info.in_bytes = v.parse().unwrap_or(0),
                "used_cpu_user" | "used_cpu_sys" => cpu += v.parse::<f64>().unwrap_or(0.0),
                "used_memory" => info.used_memory = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        info.cpu_s = cpu;
        info
    }
}

/// Samples `used_memory` every 5 ms on its own connection until stopped; keeps the peak.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<AnyResult<(u64, u64)>>,
}

impl MemorySampler {
    fn start(addr: &str) -> AnyResult<MemorySampler> {
        let mut m = Meter::connect(addr)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                peak = peak.max(m.info("memory")?.used_memory);
                if flag.load(Ordering::Acquire) {
                    return Ok((peak, m.sent_bytes));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Ok(MemorySampler { stop, thread })
    }

    /// (peak used_memory, bytes the sampler sent)
    fn finish(self) -> AnyResult<(u64, u64)> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| "the memory sampler panicked")?
    }
}

// ---------------------------------------------------------------------------------------------
// A private redis-server on a free port.

struct PrivateRedis {
    child: Arc<Mutex<Child>>,
    port: u16,
}

impl PrivateRedis {
    fn start() -> AnyResult<PrivateRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start redis-server ({e}); install it or pass --url"))?;
        let r = PrivateRedis {
            child: Arc::new(Mutex::new(child)),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut m) = Meter::connect(&format!("127.0.0.1:{port}")) {
                if matches!(m.cmd(&["PING"]), Ok(Resp::Simple)) {
                    return Ok(r);
                }
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl PrivateRedis {
    /// Stops it: our own child, by its handle (its PID).
    fn stop(child: &Mutex<Child>) {
        let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        PrivateRedis::stop(&self.child);
    }
}

fn host_port(url: &str) -> AnyResult<String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or("only redis:// URLs are supported")?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split('/').next().unwrap_or(rest);
    Ok(if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:6379")
    })
}

// ---------------------------------------------------------------------------------------------
// The driver.

enum Load {
    Workflows(Vec<Workflow>),
    Messages(Vec<workflow::TypedMessage<noop>>),
}

fn diamond() -> Workflow {
    let t = || Workflow::from(noop::message());
    Workflow::chain([
        t(),
        Workflow::group([
            Workflow::chain([t(), t()]),
            t(),
            Workflow::chain([t(), Workflow::group([t(), t()])]),
        ]),
        t(),
    ])
}

/// (what to submit, tasks, workflows)
fn build(workload: &str, n: usize) -> (Load, usize, usize) {
    let group = |n: usize| Workflow::group((0..n).map(|_| noop::message()));
    match workload {
        "diamond" => (
            Load::Workflows((0..n).map(|_| diamond()).collect()),
            8 * n,
            n,
        ),
        "fanout" => {
            let wf = Workflow::chain([group(n), noop::message().into()]);
            (Load::Workflows(vec![wf]), n + 1, 1)
        }
        "two_stage" => {
            let wf = Workflow::chain([group(n), group(n), noop::message().into()]);
            (Load::Workflows(vec![wf]), 2 * n + 1, 1)
        }
        "chain" => {
            let wf = Workflow::chain((0..n as u32).map(step::message));
            (Load::Workflows(vec![wf]), n, 1)
        }
        _ => (
            Load::Messages((0..n).map(|_| noop::message()).collect()),
            n,
            0,
        ),
    }
}

async fn submit(broker: &RedisBroker, load: Load) -> AnyResult<()> {
    let mut set = tokio::task::JoinSet::new();
    match load {
        Load::Workflows(wfs) => {
            for wf in wfs {
                let b = broker.clone();
                set.spawn(async move { wf.run(&b).await.map(drop) });
            }
        }
        Load::Messages(msgs) => {
            for m in msgs {
                let b = broker.clone();
                set.spawn(async move { m.send(&b).await.map(drop) });
            }
        }
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

async fn driver_main(o: Opts) -> AnyResult<()> {
    let mut private = None;
    let url = match &o.url {
        Some(u) => u.clone(),
        None => {
            let r = PrivateRedis::start()?;
            let url = format!("redis://127.0.0.1:{}", r.port);
            eprintln!("bench: started a private redis-server on {url}");
            private = Some(r);
            url
        }
    };
    // On Ctrl-C or SIGTERM: stop the private redis-server and exit; the worker processes see
    // their stdin close and stop by themselves.
    let redis_child = private.as_ref().map(|r| r.child.clone());
    tokio::spawn(async move {
        workflow::shutdown_signal().await;
        eprintln!("bench: interrupted");
        if let Some(child) = redis_child {
            PrivateRedis::stop(&child);
        }
        std::process::exit(130);
    });
    for run in 0..o.runs {
        let rec = match one_run(&o, &url, run).await {
            Ok(rec) => rec,
            Err(e) => json!({
                "system": "workflow", "workload": o.workload, "run": run, "ok": false,
                "error": e.to_string(),
            }),
        };
        println!("{rec}");
        eprintln!("{}", summary(&rec));
    }
    drop(private);
    Ok(())
}

/// One human-readable line about a run.
fn summary(rec: &Value) -> String {
    if rec["ok"] != json!(true) {
        return format!("  run {}: FAILED: {}", rec["run"], rec["error"]);
    }
    let f = |k: &str| rec[k].as_f64().unwrap_or(f64::NAN);
    let mut s = format!(
        "  run {}: {:.3} s, {:.0} tasks/s, {:.3} round trips/task, {:.2} Redis cmds/task, \
         {:.4} ms Redis CPU/task, {:.4} ms worker CPU/task",
        rec["run"],
        f("wall_s"),
        f("tasks_per_s"),
        f("round_trips_per_task"),
        f("redis_cmds_per_task"),
        f("redis_cpu_ms_per_task"),
        f("worker_cpu_ms_per_task"),
    );
    s += &format!(", first task after {:.1} ms", f("first_task_latency_ms"));
    if rec.get("hop_ms").is_some() {
        s += &format!(", hop {:.3} ms", f("hop_ms"));
    }
    if rec.get("redis_mem_peak_bytes").is_some() {
        s += &format!(
            ", Redis memory peak {:.2} MB (state {:.2} MB)",
            f("redis_mem_peak_bytes") / 1e6,
            f("redis_mem_state_bytes") / 1e6
        );
    }
    s
}

async fn one_run(o: &Opts, url: &str, run: usize) -> AnyResult<Value> {
    let n =
        o.n.unwrap_or(if o.workload == "plain" { 20_000 } else { 1000 });
    let addr = host_port(url)?;
    let ns = format!("bench-{}-{}-{run}", std::process::id(), now_us());
    let mut meter = Meter::connect(&addr)?;
    let broker = RedisBroker::builder(url).namespace(&ns).connect().await?;
    let (load, tasks, workflows) = build(&o.workload, n);
    let msgs_key = format!("{ns}:default.msgs");

    // two_stage: the size of the submitted state alone, before any worker runs.
    let mem_state = if o.workload == "two_stage" {
        let before = meter.info("memory")?.used_memory;
        let (extra, _, _) = build(&o.workload, n);
        submit(&broker, extra).await?;
        let after = meter.info("memory")?.used_memory;
        meter.delete_matching(&format!("{ns}:*"))?;
        tokio::time::sleep(Duration::from_millis(100)).await; // lazy frees
        Some(after.saturating_sub(before))
    } else {
        None
    };

    let mut workers = Vec::new();
    for _ in 0..o.processes {
        workers.push(WorkerProc::start(o, url, &ns)?);
    }
    let result = measure(
        o,
        &addr,
        &mut meter,
        &broker,
        &mut workers,
        load,
        tasks,
        &msgs_key,
    )
    .await;
    for w in workers {
        w.stop();
    }
    meter.delete_matching(&format!("{ns}:*"))?;
    let m = result?;

    let wall = (m.last_us.saturating_sub(m.t0_us)) as f64 / 1e6;
    let per = |x: f64| x / tasks as f64;
    let mut rec = Map::new();
    rec.insert("system".into(), json!("workflow"));
    rec.insert("workload".into(), json!(o.workload));
    rec.insert("n".into(), json!(n));
    rec.insert("processes".into(), json!(o.processes));
    rec.insert("concurrency".into(), json!(o.concurrency));
    rec.insert("poll_ms".into(), json!(o.poll_ms));
    rec.insert("run".into(), json!(run));
    rec.insert("tasks".into(), json!(tasks));
    rec.insert("workflows".into(), json!(workflows));
    rec.insert("ok".into(), json!(m.ok && m.done == tasks as u64));
    rec.insert("done".into(), json!(m.done));
    rec.insert("wall_s".into(), json!(wall));
    rec.insert("submit_s".into(), json!(m.submit_s));
    rec.insert("tasks_per_s".into(), json!(tasks as f64 / wall));
    if workflows > 0 {
        rec.insert("workflows_per_s".into(), json!(workflows as f64 / wall));
    }
    if m.first_us != u64::MAX {
        rec.insert(
            "first_task_latency_ms".into(),
            json!((m.first_us as f64 - m.t0_us as f64) / 1000.0),
        );
    }
    rec.insert("round_trips".into(), json!(m.round_trips));
    rec.insert(
        "round_trips_per_task".into(),
        json!(per(m.round_trips as f64)),
    );
    let cmds: u64 = m.cmds.values().sum();
    rec.insert("redis_cmds_per_task".into(), json!(per(cmds as f64)));
    rec.insert(
        "redis_cpu_ms_per_task".into(),
        json!(per(m.redis_cpu_s * 1000.0)),
    );
    rec.insert(
        "redis_in_bytes_per_task".into(),
        json!(per(m.in_bytes as f64)),
    );
    rec.insert(
        "worker_cpu_ms_per_task".into(),
        json!(per(m.worker_cpu_s * 1000.0)),
    );
    rec.insert(
        "driver_cpu_ms_per_task".into(),
        json!(per(m.driver_cpu_s * 1000.0)),
    );
    let mut cmds: Vec<_> = m.cmds.into_iter().collect();
    cmds.sort_by_key(|c| std::cmp::Reverse(c.1));
    let cmds: Map<String, Value> = cmds.into_iter().map(|(k, v)| (k, json!(v))).collect();
    rec.insert("redis_cmds".into(), Value::Object(cmds));
    if let Some(peak) = m.mem_peak {
        rec.insert("redis_mem_peak_bytes".into(), json!(peak));
    }
    if let Some(state) = mem_state {
        rec.insert("redis_mem_state_bytes".into(), json!(state));
    }
    if o.workload == "chain" {
        let mut steps = m.steps;
        steps.sort_unstable();
        if steps.len() == n && n > 1 {
            let hops: f64 = steps
                .windows(2)
                .map(|w| w[1].1 as f64 - w[0].2 as f64)
                .sum();
            rec.insert("hop_ms".into(), json!(hops / 1000.0 / (n - 1) as f64));
        } else {
            rec.insert("ok".into(), json!(false));
        }
    }
    if rec["ok"] != json!(true) {
        rec.insert(
            "error".into(),
            json!(format!("{} of {tasks} tasks reported done", m.done)),
        );
    }
    Ok(Value::Object(rec))
}

struct Measured {
    ok: bool,
    t0_us: u64,
    last_us: u64,
    first_us: u64,
    submit_s: f64,
    done: u64,
    round_trips: u64,
    cmds: std::collections::BTreeMap<String, u64>,
    redis_cpu_s: f64,
    in_bytes: u64,
    worker_cpu_s: f64,
    driver_cpu_s: f64,
    mem_peak: Option<u64>,
    steps: Vec<Step>,
}

/// One chain step as a worker saw it: (index, start µs, end µs).
type Step = (u32, u64, u64);

/// What the worker processes report, summed.
#[derive(Default)]
struct Sums {
    /// Requests sent to Redis.
    rt: u64,
    /// Tasks run.
    done: u64,
    /// The latest end of a task (µs since the epoch).
    last_us: u64,
    /// The earliest start of a task since the last reset (µs since the epoch).
    first_us: u64,
    /// Chain steps.
    steps: Vec<Step>,
}

fn worker_sums(workers: &mut [WorkerProc]) -> AnyResult<Sums> {
    let mut sum = Sums {
        first_us: u64::MAX,
        ..Sums::default()
    };
    for w in workers {
        let s = w.stats()?;
        let num = |k: &str| s[k].as_u64().unwrap_or(0);
        sum.rt += num("rt");
        sum.done += num("done");
        sum.last_us = sum.last_us.max(num("last_us"));
        sum.first_us = sum.first_us.min(s["first_us"].as_u64().unwrap_or(u64::MAX));
        if let Some(a) = s["steps"].as_array() {
            sum.steps.extend(
                a.iter()
                    .filter_map(|x| Some((x[0].as_u64()? as u32, x[1].as_u64()?, x[2].as_u64()?))),
            );
        }
    }
    Ok(sum)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    o: &Opts,
    addr: &str,
    meter: &mut Meter,
    broker: &RedisBroker,
    workers: &mut [WorkerProc],
    load: Load,
    tasks: usize,
    msgs_key: &str,
) -> AnyResult<Measured> {
    // Warm-up outside the window: loads the scripts into Redis and opens the connections.
    let warm = Load::Workflows(vec![diamond(), Workflow::from(step::message(u32::MAX))]);
    submit(broker, warm).await?;
    noop::message().send(broker).await?;
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while meter.int(&["HLEN", msgs_key])? != 0 || worker_sums(workers)?.done < 10 {
        if Instant::now() > warm_deadline {
            return Err("the warm-up did not finish within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // No pause here: both systems start with consumers that were busy a moment ago.
    for w in workers.iter_mut() {
        w.reset()?;
    }
    let sent0 = meter.sent_bytes;
    let before = meter.info("all")?;
    let start = worker_sums(workers)?;
    let driver_rt0 = broker.round_trips();
    let wcpu0: f64 = workers.iter().map(WorkerProc::cpu_s).sum();
    let dcpu0 = proc_cpu_s("/proc/self/stat");
    let sampler = if o.workload == "two_stage" {
        let base = meter.info("memory")?.used_memory;
        Some((base, MemorySampler::start(addr)?))
    } else {
        None
    };

    let t0_us = now_us();
    let t0 = Instant::now();
    submit(broker, load).await?;
    let submit_s = t0.elapsed().as_secs_f64();

    let deadline = t0 + Duration::from_secs(o.timeout_s);
    let mut polls = 0u64;
    let mut ok = false;
    while Instant::now() < deadline {
        polls += 1;
        if meter.int(&["HLEN", msgs_key])? == 0 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut end = worker_sums(workers)?;
    while ok && end.done - start.done < tasks as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
        end = worker_sums(workers)?;
    }
    let done = end.done - start.done;
    let mut steps = std::mem::take(&mut end.steps);
    steps.retain(|s| s.0 != u32::MAX);
    let mem_peak = match sampler {
        Some((base, s)) => {
            let (peak, sampler_bytes) = s.finish()?;
            meter.sent_bytes += sampler_bytes;
            Some(peak.saturating_sub(base))
        }
        None => None,
    };
    let after = meter.info("all")?;
    let worker_cpu_s = workers.iter().map(WorkerProc::cpu_s).sum::<f64>() - wcpu0;
    let driver_cpu_s = proc_cpu_s("/proc/self/stat") - dcpu0;
    let round_trips = end.rt - start.rt + broker.round_trips() - driver_rt0;

    let mut cmds = std::collections::BTreeMap::new();
    for (k, &v) in &after.calls {
        let mut d = v.saturating_sub(before.calls.get(k).copied().unwrap_or(0));
        if k == "hlen" {
            d = d.saturating_sub(polls);
        }
        if d > 0 && k != "info" {
            cmds.insert(k.clone(), d);
        }
    }
    // The first INFO's bytes were counted before it ran; what the meter sent after it (the
    // polls, the sampler's INFO memory, the last INFO, counted when read) is subtracted.
    let info_all_bytes = "*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n".len() as u64;
    let own = meter.sent_bytes - sent0 - info_all_bytes;
    let in_bytes = (after.in_bytes - before.in_bytes).saturating_sub(own);
    Ok(Measured {
        ok,
        t0_us,
        last_us: end.last_us,
        first_us: end.first_us,
        submit_s,
        done,
        round_trips,
        cmds,
        redis_cpu_s: after.cpu_s - before.cpu_s,
        in_bytes,
        worker_cpu_s,
        driver_cpu_s,
        mem_peak,
        steps,
    })
}
