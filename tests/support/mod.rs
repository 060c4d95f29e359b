//! Helpers of the Redis tests: which Redis to use, private `redis-server`s, a tiny RESP client
//! to look at keys directly, random namespaces, workers in the background, waiting on
//! conditions.
//!
//! Redis: `REDIS_URL` if set; else `127.0.0.1:6379` if something answers there; else a private
//! `redis-server` on a free port, started once per test binary and stopped (by its PID) when
//! the binary exits (set `WF_TEST_PRIVATE_REDIS=1` to use one even if 6379 answers).
#![allow(dead_code)]

pub mod log;
pub mod trees;

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workflow::{Broker, RedisBroker, Worker};

/// The Redis all tests of this binary share (each under its own namespace).
pub fn redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static SHARED: Mutex<Option<RedisServer>> = Mutex::new(None);
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return url;
        }
        if std::env::var_os("WF_TEST_PRIVATE_REDIS").is_none() && ping("127.0.0.1:6379") {
            return "redis://127.0.0.1:6379".into();
        }
        let server = RedisServer::start();
        let url = server.url();
        // Kept until the process exits; its watchdog stops it then.
        *SHARED.lock().unwrap() = Some(server);
        url
    })
    .clone()
}

fn ping(addr: &str) -> bool {
    let Ok(addr) = addr.parse() else { return false };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// A fresh namespace, so that tests never see each other's keys.
pub fn namespace() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "wft-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A broker on the shared Redis under a fresh namespace.
pub async fn broker() -> RedisBroker {
    broker_with(&redis_url(), &namespace(), Duration::from_secs(60)).await
}

/// A broker on `url` under `ns` with the given heartbeat timeout.
pub async fn broker_with(url: &str, ns: &str, heartbeat_timeout: Duration) -> RedisBroker {
    RedisBroker::builder(url)
        .namespace(ns)
        .heartbeat_timeout(heartbeat_timeout)
        .connect()
        .await
        .expect("connect to Redis")
}

/// Deletes every key of a namespace when dropped, also when the test fails.
pub struct Cleanup {
    url: String,
    ns: String,
}

impl Cleanup {
    /// Cleans up `ns` on the shared Redis.
    pub fn new(ns: &str) -> Cleanup {
        Cleanup::on(&redis_url(), ns)
    }

    /// Cleans up `ns` on the Redis at `url`.
    pub fn on(url: &str, ns: &str) -> Cleanup {
        Cleanup {
            url: url.to_owned(),
            ns: ns.to_owned(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.url, &self.ns);
    }
}

/// Deletes every key of the namespace.
pub fn cleanup(url: &str, ns: &str) {
    let mut r = Resp::connect(url);
    for key in r.keys(&format!("{ns}:*")) {
        r.cmd(&["DEL", &key]);
    }
}

// ---- Workers in the background ----

/// A worker running in the background until [`Running::stop`].
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<workflow::Result<()>>,
}

impl Running {
    /// Asks the worker to shut down and waits until it did.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task)
            .await
            .expect("the worker task panicked")
            .expect("the worker failed");
    }
}

/// Starts `worker` in the background.
pub fn start(worker: Worker) -> Running {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        task,
    }
}

/// A worker on `broker` for `queues`, polling idle queues at least every 100 ms.
pub fn worker(broker: impl Broker, queues: &[&str]) -> Worker {
    Worker::new(broker)
        .queues(queues.iter().copied())
        .max_poll_interval(Duration::from_millis(100))
        .grace_period(Duration::from_secs(5))
}

/// Waits until `cond` holds, polling, or panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

// ---- A private redis-server ----

/// A `redis-server` of our own on a free port, with an append-only file so that it keeps its
/// data across [`stop`](Self::stop) and [`start_again`](Self::start_again).
///
/// It runs under a small shell watchdog that kills it (by PID) when this process exits, even
/// if the test panics or is killed.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    durable: bool,
    pid: u32,
    watchdog: Option<(Child, ChildStdin)>,
}

impl RedisServer {
    /// Starts a server on a free port. Panics if `redis-server` is not installed.
    pub fn start() -> RedisServer {
        RedisServer::start_with(true)
    }

    /// Starts a server that keeps nothing on disk (for measurements).
    pub fn start_in_memory() -> RedisServer {
        RedisServer::start_with(false)
    }

    fn start_with(durable: bool) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("wf-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
        let mut server = RedisServer {
            port,
            dir,
            durable,
            pid: 0,
            watchdog: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let log = self.dir.join("redis.log").to_string_lossy().into_owned();
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(r#"redis-server "$@" & pid=$!; echo $pid; read _; kill -9 $pid 2>/dev/null"#)
            .arg("sh")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir,
                "--logfile",
                &log,
            ])
            .args(["--save", "", "--appendfsync", "always"])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = spawned.expect("cannot run `sh`");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.pid = line
            .trim()
            .parse()
            .expect("the watchdog prints the PID of redis-server");
        let stdin = child.stdin.take().expect("stdin is piped");
        self.watchdog = Some((child, stdin));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(&format!("127.0.0.1:{}", self.port)) {
            if !Path::new(&format!("/proc/{}", self.pid)).exists() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                if which("redis-server").is_none() {
                    panic!(
                        "redis-server is not installed and no Redis answers on 127.0.0.1:6379: \
                         run `apt-get install redis-server`, or set REDIS_URL"
                    );
                }
                panic!("redis-server on port {} did not start: {log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops it with SIGTERM (it writes its data and exits) and waits until it is gone.
    pub fn stop(&mut self) {
        signal(self.pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && !is_zombie(self.pid) {
            assert!(
                Instant::now() < deadline,
                "redis-server {} did not stop",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reap_watchdog();
    }

    /// Starts it again on the same port and data directory.
    pub fn start_again(&mut self) {
        self.launch();
    }

    fn reap_watchdog(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        signal(self.pid, "KILL");
        self.reap_watchdog();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Sends a signal (`TERM`, `KILL`) to one process, by PID.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- A tiny synchronous RESP client, to read and write keys directly ----

/// A reply of Redis.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `$-1` / `*-1`.
    Nil,
    /// `:n`.
    Int(i64),
    /// `+text` or `$n text`.
    Bulk(Vec<u8>),
    /// `*n ...`.
    Array(Vec<Reply>),
    /// `-ERR ...`.
    Error(String),
}

impl Reply {
    /// The reply as text (panics if it is not a string).
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("not a string: {other:?}"),
        }
    }

    /// The reply as an integer (also a numeric string).
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            Reply::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The reply as an array of strings.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Reply::Array(items) => items.iter().map(Reply::text).collect(),
            Reply::Nil => Vec::new(),
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// A blocking connection speaking RESP2.
pub struct Resp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Resp {
    /// Connects to `redis://host:port[/db]`.
    pub fn connect(url: &str) -> Resp {
        let rest = url.strip_prefix("redis://").expect("a redis:// URL");
        let rest = rest.rsplit('@').next().unwrap();
        let (addr, db) = rest.split_once('/').unwrap_or((rest, ""));
        let s = TcpStream::connect(addr).expect("connect to Redis");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Resp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        if !db.is_empty() {
            c.cmd(&["SELECT", db]);
        }
        c
    }

    /// Sends one command.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).unwrap();
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Bulk(rest.as_bytes().to_vec()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Nil;
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Bulk(buf)
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Nil;
                }
                Reply::Array((0..n).map(|_| self.read()).collect())
            }
            _ => panic!("unexpected reply line {line:?}"),
        }
    }

    /// All keys matching `pattern`, found with SCAN.
    pub fn keys(&mut self, pattern: &str) -> Vec<String> {
        let mut cursor = "0".to_owned();
        let mut keys = Vec::new();
        loop {
            let r = self.cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
            let Reply::Array(parts) = r else {
                panic!("SCAN: {r:?}")
            };
            cursor = parts[0].text();
            keys.extend(parts[1].texts());
            if cursor == "0" {
                return keys;
            }
        }
    }

    /// A numeric field of `INFO <section>` (0 if absent).
    pub fn info_u64(&mut self, section: &str, field: &str) -> u64 {
        self.info_f64(section, field) as u64
    }

    /// A numeric field of `INFO <section>` (0 if absent).
    pub fn info_f64(&mut self, section: &str, field: &str) -> f64 {
        let info = self.cmd(&["INFO", section]).text();
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The CPU time the server used so far (user and system), in seconds.
    pub fn cpu_seconds(&mut self) -> f64 {
        self.info_f64("cpu", "used_cpu_user") + self.info_f64("cpu", "used_cpu_sys")
    }

    /// The time Redis spent running scripts (FCALL, EVALSHA, EVAL) since the last `CONFIG RESETSTAT`,
    /// in µs, from INFO commandstats.
    pub fn script_usec(&mut self) -> u64 {
        let info = self.cmd(&["INFO", "commandstats"]).text();
        info.lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| matches!(*name, "fcall" | "evalsha" | "eval"))
            .filter_map(|(_, rest)| rest.split(',').find_map(|kv| kv.strip_prefix("usec=")))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum()
    }

    /// The calls of each command since the last `CONFIG RESETSTAT`, from INFO commandstats.
    pub fn command_calls(&mut self) -> Vec<(String, u64)> {
        let info = self.cmd(&["INFO", "commandstats"]).text();
        info.lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .collect()
    }
}
