#!/usr/bin/env python3
"""Driver for the Python reference (dramatiq 2.2.1 + dramatiq-workflow 0.3.0).

Measures the same workloads and metrics as `examples/bench.rs` and prints one JSON line per
run (the same keys), so bench/report.py can put both side by side.

    peer_bench.py WORKLOAD --url redis://127.0.0.1:PORT [--n N] [--processes P]
                  [--threads T] [--runs K] [--out FILE] [--timeout S]

WORKLOAD: diamond | fanout | chain | plain | two_stage (no-op actors).

Each run starts a fresh `dramatiq peer_app` worker group (own session) on a fresh namespace,
waits until every worker process is ready, snapshots the Redis counters, submits, waits until
the queue's message hash is empty and every task reported, snapshots again, stops the workers
by their process group and deletes the run's keys. It never flushes the database.

What the measuring connection itself sends (INFO, the HLEN polls) is subtracted from the
command and byte counts; client round trips are counted inside redis-py in every process of
the system (see peer_app.py).
"""

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.002


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=["diamond", "fanout", "chain", "plain", "two_stage"])
    ap.add_argument("--url", required=True, help="a private Redis (its counters are read)")
    ap.add_argument("--n", type=int, default=None, help="size (default 1000; plain 20000)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=None, help="append the JSON lines to this file too")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per run at most")
    a = ap.parse_args()
    if a.n is None:
        a.n = 20000 if a.workload == "plain" else 1000
    return a


ARGS = parse_args()
NS = "bench-" + uuid.uuid4().hex[:12]
STATS_DIR = tempfile.mkdtemp(prefix="peer-bench-")
os.environ.update(BENCH_REDIS_URL=ARGS.url, BENCH_STATS_DIR=STATS_DIR, BENCH_ROLE="driver", BENCH_NS=NS)
sys.path.insert(0, HERE)

import redis  # noqa: E402

import peer_app  # noqa: E402
from dramatiq_workflow import Chain, Group, Workflow  # noqa: E402


def measuring_client():
    """A client whose requests are not counted as the system's round trips."""
    r = redis.Redis.from_url(ARGS.url, single_connection_client=True)
    r.ping()
    r.connection._bench_skip = True
    return r


R = measuring_client()


def packed_len(*args):
    return sum(len(p) for p in R.connection.pack_command(*args))


# --- Redis-side counters --------------------------------------------------------------------
def redis_snapshot():
    info = R.info("all")
    return {
        "cmds": {k[len("cmdstat_"):]: v["calls"] for k, v in info.items() if k.startswith("cmdstat_")},
        "in_bytes": int(info["total_net_input_bytes"]),
        "cpu_s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "used_memory": int(info["used_memory"]),
    }


class MemorySampler(threading.Thread):
    """Samples INFO memory every 5 ms on its own connection; keeps the peak."""

    def __init__(self):
        super().__init__(daemon=True)
        self.r = measuring_client()
        self.peak = 0
        self.calls = 0
        self.stop = threading.Event()

    def sample(self):
        used = int(self.r.info("memory")["used_memory"])
        self.calls += 1
        self.peak = max(self.peak, used)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.005)


# --- worker processes -----------------------------------------------------------------------
def group_cpu_s(pgid):
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if int(rest[2]) == pgid:  # field 5: process group
            total += int(rest[11]) + int(rest[12])  # fields 14, 15: utime, stime
    return total / TICK


def read_stats():
    out = []
    for p in glob.glob(os.path.join(STATS_DIR, "*.json")):
        try:
            with open(p) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def start_workers(log_path):
    for p in glob.glob(os.path.join(STATS_DIR, "*.json")):
        os.remove(p)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("BENCH_ROLE")
    argv = [os.path.join(os.path.dirname(sys.executable), "dramatiq"), "peer_app",
            "--processes", str(ARGS.processes), "--threads", str(ARGS.threads)]
    log = open(log_path, "w")
    p = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.time() + 60
    while True:
        with open(log_path, errors="replace") as f:
            ready = f.read().count("is ready for action")
        if ready >= ARGS.processes and len(read_stats()) >= ARGS.processes:
            return p
        if p.poll() is not None or time.time() > deadline:
            stop_workers(p)
            raise RuntimeError(f"workers did not start; see {log_path}")
        time.sleep(0.05)


def stop_workers(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # our own process group only
    except ProcessLookupError:
        pass
    p.wait()


# --- workloads ------------------------------------------------------------------------------
noop, step = peer_app.noop, peer_app.step


def diamond():
    return Workflow(Chain(
        noop.message(),
        Group(
            Chain(noop.message(), noop.message()),
            noop.message(),
            Chain(noop.message(), Group(noop.message(), noop.message())),
        ),
        noop.message(),
    ))


def build(workload, n):
    """(submit callables, tasks, workflows)"""
    if workload == "diamond":
        return [w.run for w in (diamond() for _ in range(n))], 8 * n, n
    if workload == "fanout":
        wf = Workflow(Chain(Group(*[noop.message() for _ in range(n)]), noop.message()))
        return [wf.run], n + 1, 1
    if workload == "two_stage":
        wf = Workflow(Chain(Group(*[noop.message() for _ in range(n)]),
                            Group(*[noop.message() for _ in range(n)]), noop.message()))
        return [wf.run], 2 * n + 1, 1
    if workload == "chain":
        return [Workflow(Chain(*[step.message(i) for i in range(n)])).run], n, 1
    if workload == "plain":
        msgs = [noop.message() for _ in range(n)]
        return [lambda m=m: peer_app.broker.enqueue(m) for m in msgs], n, 0
    raise SystemExit(f"unknown workload {workload}")


def wait_until(pred, deadline, pause=POLL_S):
    polls = 0
    while True:
        polls += 1
        if pred():
            return True, polls
        if time.time() > deadline:
            return False, polls
        time.sleep(pause)


def delete_namespace():
    keys = list(R.scan_iter(match=f"{NS}:*", count=1000))
    for i in range(0, len(keys), 500):
        R.unlink(*keys[i:i + 500])


def summary(rec):
    if not rec.get("ok"):
        return f"  run {rec.get('run')}: FAILED: {rec.get('error')}"
    s = (f"  run {rec['run']}: {rec['wall_s']:.3f} s, {rec['tasks_per_s']:.0f} tasks/s, "
         f"{rec['round_trips_per_task']:.3f} round trips/task, {rec['redis_cmds_per_task']:.2f} Redis cmds/task, "
         f"{rec['redis_cpu_ms_per_task']:.4f} ms Redis CPU/task, {rec['worker_cpu_ms_per_task']:.4f} ms worker CPU/task")
    s += f", first task after {rec.get('first_task_latency_ms', float('nan')):.1f} ms"
    if "hop_ms" in rec:
        s += f", hop {rec['hop_ms']:.3f} ms"
    if "redis_mem_peak_bytes" in rec:
        s += (f", Redis memory peak {rec['redis_mem_peak_bytes'] / 1e6:.2f} MB "
              f"(state {rec['redis_mem_state_bytes'] / 1e6:.2f} MB)")
    return s


# --- one run --------------------------------------------------------------------------------
def one_run(run):
    rec = {"system": "dramatiq" if ARGS.workload == "plain" else "dramatiq-workflow",
           "workload": ARGS.workload, "n": ARGS.n, "processes": ARGS.processes,
           "concurrency": ARGS.threads, "run": run}
    log_path = os.path.join(STATS_DIR, f"worker-{ARGS.workload}-{run}.log")
    submits, tasks, workflows = build(ARGS.workload, ARGS.n)
    rec.update(tasks=tasks, workflows=workflows)
    msgs_key = f"{NS}:default.msgs"
    if ARGS.workload == "two_stage":
        # The size of the submitted state alone, before any worker runs; then deleted again.
        extra, _, _ = build(ARGS.workload, ARGS.n)
        m0 = int(R.info("memory")["used_memory"])
        for s in extra:
            s()
        rec["redis_mem_state_bytes"] = int(R.info("memory")["used_memory"]) - m0
        delete_namespace()
        time.sleep(0.1)
    workers = start_workers(log_path)
    sampler = MemorySampler() if ARGS.workload == "two_stage" else None
    try:
        # Warm-up outside the window: loads the scripts into Redis and opens the connections.
        diamond().run()
        Workflow(Chain(step.message(-1))).run()
        peer_app.broker.enqueue(noop.message())
        ok, _ = wait_until(lambda: R.hlen(msgs_key) == 0 and sum(s["done"] for s in read_stats()) >= 10,
                           time.time() + 60, 0.005)
        if not ok:
            raise RuntimeError(f"the warm-up did not finish within 60 s; see {log_path}")
        # No pause here: both systems start with consumers that were busy a moment ago. Ask
        # the workers to forget the warm-up's first task start, and wait until they did.
        gen = run + 1
        with open(os.path.join(STATS_DIR, "reset"), "w") as f:
            f.write(str(gen))
        ok, _ = wait_until(lambda: all(s.get("reset") == gen for s in read_stats()), time.time() + 10, 0.002)
        if not ok:
            raise RuntimeError("the workers did not take the reset")
        before = redis_snapshot()
        stats0 = read_stats()
        rt0 = sum(s["rt"] for s in stats0)
        done0 = sum(s["done"] for s in stats0)
        driver_rt0 = peer_app.round_trips()
        cpu0 = group_cpu_s(workers.pid)
        ru0 = os.times()
        if sampler:
            sampler.sample()
            base_mem = sampler.peak
            sampler.start()
        t0 = time.time()
        for s in submits:
            s()
        t_submit = time.time()
        deadline = t0 + ARGS.timeout
        polls = 0
        hlen_bytes = packed_len("HLEN", msgs_key)

        def queue_empty():
            nonlocal polls
            polls += 1
            return R.hlen(msgs_key) == 0

        ok, _ = wait_until(queue_empty, deadline)
        ok2, _ = wait_until(lambda: sum(s["done"] for s in read_stats()) - done0 >= tasks, deadline, 0.005)
        time.sleep(0.05)  # the stats files lag by <= 10 ms
        if sampler:
            sampler.stop.set()
            sampler.join()
        stats = read_stats()
        after = redis_snapshot()
        cpu1 = group_cpu_s(workers.pid)
        ru1 = os.times()
    finally:
        stop_workers(workers)
        delete_namespace()

    done = sum(s["done"] for s in stats) - done0
    last = max((s["last"] for s in stats), default=0.0)
    wall = last - t0
    round_trips = sum(s["rt"] for s in stats) - rt0 + peer_app.round_trips() - driver_rt0
    cmds = {}
    for k, v in after["cmds"].items():
        d = v - before["cmds"].get(k, 0)
        if k == "hlen":
            d -= polls
        if d > 0 and k != "info":
            cmds[k] = d
    info_bytes = packed_len("INFO", "all") + (sampler.calls * packed_len("INFO", "memory") if sampler else 0)
    in_bytes = after["in_bytes"] - before["in_bytes"] - polls * hlen_bytes - info_bytes
    rec.update(
        ok=ok and ok2 and done == tasks, done=done, wall_s=wall, submit_s=t_submit - t0,
        tasks_per_s=tasks / wall, round_trips=round_trips, round_trips_per_task=round_trips / tasks,
        redis_cmds_per_task=sum(cmds.values()) / tasks,
        redis_cpu_ms_per_task=(after["cpu_s"] - before["cpu_s"]) * 1000 / tasks,
        redis_in_bytes_per_task=in_bytes / tasks,
        worker_cpu_ms_per_task=(cpu1 - cpu0) * 1000 / tasks,
        driver_cpu_ms_per_task=((ru1.user + ru1.system) - (ru0.user + ru0.system)) * 1000 / tasks,
        redis_cmds=dict(sorted(cmds.items(), key=lambda kv: -kv[1])),
    )
    if workflows:
        rec["workflows_per_s"] = workflows / wall
    if sampler:
        rec["redis_mem_peak_bytes"] = sampler.peak - base_mem
    firsts = [s["first"] for s in stats if s.get("first") is not None]
    if firsts:
        rec["first_task_latency_ms"] = (min(firsts) - t0) * 1000
    if ARGS.workload == "chain":
        steps = sorted((tuple(x) for s in stats for x in s["steps"] if x[0] >= 0), key=lambda x: x[0])
        if len(steps) == ARGS.n:
            hops = [steps[i + 1][1] - steps[i][2] for i in range(len(steps) - 1)]
            rec["hop_ms"] = sum(hops) * 1000 / len(hops)
        else:
            rec["ok"] = False
    if not rec["ok"]:
        rec["error"] = f"done {done} of {tasks} tasks (queue empty: {ok}); worker log {log_path}"
    return rec


def main():
    failed = False
    try:
        for run in range(ARGS.runs):
            try:
                rec = one_run(run)
            except Exception as e:  # record it, go on with the next run
                rec = {"system": "dramatiq-workflow", "workload": ARGS.workload, "n": ARGS.n,
                       "processes": ARGS.processes, "concurrency": ARGS.threads, "run": run,
                       "ok": False, "error": repr(e)}
            failed |= not rec["ok"]
            line = json.dumps(rec)
            print(line, flush=True)
            print(summary(rec), file=sys.stderr, flush=True)
            if ARGS.out:
                with open(ARGS.out, "a") as f:
                    f.write(line + "\n")
    finally:
        if failed:
            print(f"worker logs kept in {STATS_DIR}", file=sys.stderr)
        else:
            shutil.rmtree(STATS_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
