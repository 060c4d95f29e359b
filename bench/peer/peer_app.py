"""The Python reference system for bench/compare.sh: dramatiq 2.2.1 + dramatiq-workflow 0.3.0.

Imported by the `dramatiq` CLI in every worker process (`dramatiq peer_app ...`) and by the
driver (peer_bench.py), which only submits. The Redis URL comes from BENCH_REDIS_URL, the
namespace from BENCH_NS.

Measurement without extra Redis traffic: each process counts, in memory,
  * the requests its redis-py connections send (one per `send_packed_command`: a command, a
    script call or a whole pipeline is one round trip), except on connections marked
    `_bench_skip` (the driver's measuring connection);
  * the tasks its actors ran, when the first one started (since the driver's last reset) and
    when the last one ended;
  * for `step(i)`, the wall-clock start and end of every chain step.
Worker processes write these to BENCH_STATS_DIR/<pid>.json every 10 ms when they changed;
the driver reads the files. The actors themselves never touch Redis.
"""

import json
import os
import threading
import time

import dramatiq
import redis
import redis.connection
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits.backends import RedisBackend
from dramatiq_workflow import WorkflowMiddleware

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6390")

# --- client-side request counter ------------------------------------------------------------
_lock = threading.Lock()
_stats = {"rt": 0, "done": 0, "last": 0.0, "first": None, "reset": 0, "steps": []}
_version = [0]

_orig_send = redis.connection.AbstractConnection.send_packed_command


def _counted_send(self, command, check_health=True):
    if not getattr(self, "_bench_skip", False):
        with _lock:
            _stats["rt"] += 1
            _version[0] += 1
    return _orig_send(self, command, check_health)


redis.connection.AbstractConnection.send_packed_command = _counted_send


def round_trips():
    with _lock:
        return _stats["rt"]


def _task_done(start, step=None):
    end = time.time()
    with _lock:
        if _stats["first"] is None or start < _stats["first"]:
            _stats["first"] = start
        _stats["done"] += 1
        if end > _stats["last"]:
            _stats["last"] = end
        if step is not None:
            _stats["steps"].append((step, start, end))
        _version[0] += 1


def _writer(folder):
    path = os.path.join(folder, f"{os.getpid()}.json")
    reset_path = os.path.join(folder, "reset")
    written = -1
    while True:
        # The driver asks, by writing a number to `reset`, to forget the first task start.
        try:
            with open(reset_path) as f:
                gen = int(f.read() or 0)
        except (OSError, ValueError):
            gen = 0
        with _lock:
            if gen != _stats["reset"]:
                _stats["reset"] = gen
                _stats["first"] = None
                _version[0] += 1
            v = _version[0]
            snap = json.dumps(dict(_stats, pid=os.getpid())) if v != written else None
        if snap is not None:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(snap)
            os.replace(tmp, path)
            written = v
        time.sleep(0.01)


_STATS_DIR = os.environ.get("BENCH_STATS_DIR")
if _STATS_DIR and os.environ.get("BENCH_ROLE") != "driver":
    threading.Thread(target=_writer, args=(_STATS_DIR,), daemon=True, name="bench-stats").start()

# --- the application ------------------------------------------------------------------------
broker = RedisBroker(url=URL, namespace=os.environ.get("BENCH_NS", "dramatiq"))
broker.add_middleware(WorkflowMiddleware(RedisBackend(client=redis.Redis.from_url(URL))))
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def noop():
    _task_done(time.time())


@dramatiq.actor(max_retries=0)
def step(i):
    start = time.time()
    _task_done(start, i)
