//! The Lua scripts of the Redis broker (`workflow-runtime/lua/*.lua`), as one Redis function
//! library.
//!
//! The library is `common.lua` (helpers; writes are buffered and checked before the first
//! one), `engine.lua` (the workflow engine) and `take.lua` (handing out messages), followed by
//! each script as a function `wf_<hash>_<script>`. Loading it sets up the shared code once;
//! each call (`FCALL`) then runs only the script's own body, after `begin` reset the state of
//! the call. Before, every `EVALSHA` ran the whole text again: about 13 µs per call before the
//! script's own work.
//!
//! Library and function names carry a hash of the library's text, so that workers of
//! different versions can share a Redis without replacing each other's scripts. The library is
//! loaded when a broker connects and again whenever Redis answers that a function is missing
//! (after a restart without persistence, or `FUNCTION FLUSH`). Needs Redis 7.0 or later.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, RedisResult, ToRedisArgs};

macro_rules! lua {
    ($file:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/", $file))
    };
}

/// The shared code, in this order, before the functions.
const SHARED: [&str; 3] = [lua!("common.lua"), lua!("engine.lua"), lua!("take.lua")];

/// Each script: its name, its text, and whether it starts with `begin` (all but those that
/// read their arguments themselves).
const SCRIPTS: [(&str, &str, bool); 9] = [
    ("enqueue", lua!("enqueue.lua"), false),
    ("fetch", lua!("fetch.lua"), true),
    ("settle", lua!("settle.lua"), true),
    ("heartbeat", lua!("heartbeat.lua"), true),
    ("stats", lua!("stats.lua"), false),
    ("submit", lua!("submit.lua"), true),
    ("resume", lua!("resume.lua"), true),
    ("cancel", lua!("cancel.lua"), true),
    ("sweep", lua!("sweep.lua"), true),
];

/// The library's source and the prefix of its function names.
pub(super) struct Library {
    pub(super) source: String,
    prefix: String,
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(super) static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    let mut parts: Vec<&str> = SHARED.to_vec();
    parts.extend(SCRIPTS.iter().map(|(_, text, _)| *text));
    let hash = format!("{:016x}", fnv1a(&parts));
    let prefix = format!("wf_{hash}_");
    let mut source = format!("#!lua name=workflow_{hash}\n");
    for shared in SHARED {
        source.push_str(shared);
        source.push('\n');
    }
    for (name, text, begins) in SCRIPTS {
        source.push_str(&format!(
            "redis.register_function('{prefix}{name}', function(_, args)\n"
        ));
        source.push_str(if begins {
            "local begin_error = begin(args)\nif begin_error then\nreturn begin_error\nend\n"
        } else {
            "ARGV = args\n"
        });
        source.push_str(text);
        source.push_str("\nend)\n");
    }
    Library { source, prefix }
});

/// One function of the library.
pub(super) struct Function(&'static str);

/// `enqueue.lua`: one message onto a queue.
pub(super) const ENQUEUE: Function = Function("enqueue");
/// `fetch.lua`: a batch of messages into this worker's acks set (an empty queue costs one
/// `LPOP`); drops those of stopped workflows (`take.lua`).
pub(super) const FETCH: Function = Function("fetch");
/// `settle.lua`: acks, completions (workflow advancement), retries, dead letters, requeues;
/// hands back messages of the queues it pushed onto (`take.lua`).
pub(super) const SETTLE: Function = Function("settle");
/// `heartbeat.lua`: heartbeat, recovery of dead workers' messages, dead-letter expiry, claims
/// of workflows with tasks left to start.
pub(super) const HEARTBEAT: Function = Function("heartbeat");
/// `stats.lua`: sizes of a queue.
pub(super) const STATS: Function = Function("stats");
/// `submit.lua`: writes a workflow and enqueues its entry tasks.
pub(super) const SUBMIT: Function = Function("submit");
/// `resume.lua`: starts more tasks of a big start set.
pub(super) const RESUME: Function = Function("resume");
/// `cancel.lua`: cancels a running workflow.
pub(super) const CANCEL: Function = Function("cancel");
/// `sweep.lua`: skips more queued tasks of a stopped workflow.
pub(super) const SWEEP: Function = Function("sweep");

impl Function {
    /// A call of this function, to add arguments to.
    pub(super) fn prepare_invoke(&self) -> Invocation {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(format!("{}{}", LIBRARY.prefix, self.0)).arg(0);
        Invocation { cmd }
    }
}

/// A call of a library function with its arguments (`FCALL <name> 0 <args>`).
pub(super) struct Invocation {
    cmd: Cmd,
}

impl Invocation {
    /// Adds an argument.
    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Calls the function; loads the library first if Redis does not have it (then calls
    /// again: the first call ran nothing).
    pub(super) async fn invoke_async<T: FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> RedisResult<T> {
        match self.cmd.query_async(conn).await {
            Err(e) if is_missing_function(&e) => {
                load(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }
}

fn is_missing_function(e: &redis::RedisError) -> bool {
    e.to_string().contains("Function not found")
}

/// Loads the library (`FUNCTION LOAD REPLACE`: loading the same text again is harmless).
pub(super) async fn load(conn: &mut ConnectionManager) -> RedisResult<()> {
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(&LIBRARY.source)
        .query_async::<String>(conn)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_names_its_functions_after_its_hash() {
        let lib = &*LIBRARY;
        let first = lib.source.lines().next().unwrap();
        let hash = first.strip_prefix("#!lua name=workflow_").unwrap();
        assert_eq!(hash.len(), 16);
        assert_eq!(lib.prefix, format!("wf_{hash}_"));
        for (name, _, _) in SCRIPTS {
            let register = format!("redis.register_function('wf_{hash}_{name}', ");
            assert_eq!(lib.source.matches(&register).count(), 1, "{name}");
        }
        assert_eq!(fnv1a(&["a", "b"]), fnv1a(&["a", "b"]));
        assert_ne!(fnv1a(&["a", "b"]), fnv1a(&["ab"]));
    }
}
