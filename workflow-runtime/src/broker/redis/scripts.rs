//! The Lua scripts of the Redis broker (`workflow-runtime/lua/*.lua`), loaded once.
//!
//! Each is called with `invoke_async`, which sends `EVALSHA` and loads the script on
//! `NOSCRIPT` (after a Redis restart, for example). All but `enqueue` and `stats` are
//! prefixed with `common.lua` (helpers; writes are buffered and checked before the first
//! one), those that advance or stop workflows also with `engine.lua`, the workflow engine,
//! and those that hand out messages with `take.lua`.

use std::sync::LazyLock;

use redis::Script;

macro_rules! lua {
    ($file:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/", $file))
    };
}

macro_rules! with_common {
    ($($file:literal),+) => {
        concat!(lua!("common.lua") $(, "\n", lua!($file))+)
    };
}

macro_rules! with_engine {
    ($($file:literal),+) => {
        concat!(lua!("common.lua"), "\n", lua!("engine.lua") $(, "\n", lua!($file))+)
    };
}

/// `enqueue.lua`: one message onto a queue.
pub(super) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("enqueue.lua")));
/// `fetch.lua`: a batch of messages into this worker's acks set (an empty queue costs one
/// `LPOP`); drops those of stopped workflows (`take.lua`).
pub(super) static FETCH: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_common!("take.lua", "fetch.lua")));
/// `settle.lua`: acks, completions (workflow advancement), retries, dead letters, requeues;
/// hands back messages of the queues it pushed onto (`take.lua`).
pub(super) static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_engine!("take.lua", "settle.lua")));
/// `heartbeat.lua`: heartbeat, recovery of dead workers' messages, dead-letter expiry, claims
/// of workflows with tasks left to start.
pub(super) static HEARTBEAT: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_common!("heartbeat.lua")));
/// `stats.lua`: sizes of a queue.
pub(super) static STATS: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("stats.lua")));
/// `submit.lua`: writes a workflow and enqueues its entry tasks.
pub(super) static SUBMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_engine!("submit.lua")));
/// `resume.lua`: starts more tasks of a big start set.
pub(super) static RESUME: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_engine!("resume.lua")));
/// `cancel.lua`: cancels a running workflow.
pub(super) static CANCEL: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_engine!("cancel.lua")));
/// `sweep.lua`: skips more queued tasks of a stopped workflow.
pub(super) static SWEEP: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_engine!("sweep.lua")));
