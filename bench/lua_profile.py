#!/usr/bin/env python3
"""Where Redis spends its CPU in our Lua scripts: record a benchmark's script calls, replay them.

    lua_profile.py record WORKLOAD FILE [--n N]   run examples/bench (release) on a private
                                                  redis-server under MONITOR; keep the script
                                                  calls of our processes in FILE
    lua_profile.py replay FILE [--fns a,b,...] [--rev REV] [--instructions]
                                                  replay FILE on a private redis-server with the
                                                  scripts of workflow-runtime/lua as they are now
                                                  (or at git revision REV)

`replay` prints, for the whole stream run as the broker runs it (FCALLs of the scripts loaded as
one function library): Redis CPU, FCALL time and the time of the commands run inside scripts
(INFO commandstats). Then, running each script with EVAL (the library's shared code, then the
script) so that it can be instrumented: per script, calls, time inside its own body (TIME around
it) and Lua heap allocated by it (collectgarbage('count') with the collector stopped); per
function of common.lua / engine.lua / take.lua given with --fns (default: the hot path of
settle.lua), calls and time including callees, less the measured cost of the instrumentation.
Functions are profiled one replay at a time, so the numbers do not nest instrumentation.
`--instructions` instead counts the instructions redis-server executes for the stream, under
valgrind's callgrind: the same count on a busy machine as on a quiet one, where CPU times vary.

Replaying is deterministic: every script takes its clock and ids from ARGV, and calls are
matched to scripts by name, so a stream recorded once can be replayed against edited scripts
to see what a change to the Lua is worth, without rebuilding or rerunning the workers. Needs
bench/.venv (bench/compare.sh makes it) and redis-server; everything runs on a private server on
a free port, stopped at the end.
"""

import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = os.path.join(ROOT, "workflow-runtime", "lua")
HOT = ["complete", "follow", "start", "build", "get", "hmget", "set", "push", "wf", "expect", "flush"]


REV = None  # --rev: read the scripts from this git revision instead of the work tree


def read(rel):
    if REV:
        return subprocess.run(["git", "-C", ROOT, "show", f"{REV}:{rel}"], check=True,
                              capture_output=True, text=True).stdout
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def scripts():
    """Every script of the library (scripts.rs) as (prefix, own file) pairs, runnable with EVAL:
    the prefix is the shared code and the call to `begin` for the scripts that start with it
    (those that read their arguments themselves have none)."""
    rs = read("workflow-runtime/src/broker/redis/scripts.rs")
    shared = re.search(r"const SHARED: \[&str; \d+\] = \[(.*?)\];", rs, re.S).group(1)
    shared_src = "".join(read(f"workflow-runtime/lua/{f}") + "\n" for f in re.findall(r'"(\w+\.lua)"', shared))
    out = {}
    for name, file, begins in re.findall(r'\("(\w+)", lua!\("(\w+\.lua)"\), (true|false)\)', rs):
        try:
            body = read(f"workflow-runtime/lua/{file}")
        except (OSError, subprocess.CalledProcessError):
            continue
        prefix = ("local __args = ARGV\n" + shared_src +
                  "local __be = begin(__args)\nif __be then return __be end\n") if begins == "true" else ""
        out[name] = (prefix, body)
    if not out:
        raise SystemExit("scripts.rs: no scripts found")
    return out, shared_src


def library(originals, shared_src):
    """The scripts as one function library, as scripts.rs assembles it: functions wfr_<name>."""
    src = "#!lua name=workflow_replay\n" + shared_src
    for name, (prefix, body) in originals.items():
        start = "local __be = begin(args)\nif __be then return __be end\n" if prefix else "ARGV = args\n"
        src += f"redis.register_function('wfr_{name}', function(_, args)\n{start}{body}\nend)\n"
    return src


class PrivateRedis:
    def __init__(self, wrap=()):
        self.wrap = list(wrap)  # a command to run redis-server under (valgrind, ...)

    def __enter__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen(self.wrap + ["redis-server", "--port", str(self.port), "--bind",
                                                  "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port)
        for _ in range(400):
            try:
                self.r.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()  # our own child
        self.proc.wait()


# --- record ---------------------------------------------------------------------------------
def record(args):
    bench = os.path.join(ROOT, "target", "release", "examples", "bench")
    if not os.path.exists(bench):
        raise SystemExit("build it first: cargo build --release --example bench")
    with PrivateRedis() as pr:
        sock = socket.create_connection(("127.0.0.1", pr.port))
        sock.sendall(b"MONITOR\r\n")
        lines = []

        def reader():
            buf = b""
            while True:
                try:
                    data = sock.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                *done, buf = buf.split(b"\r\n")
                lines.extend(done)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        cmd = [bench, "--url", f"redis://127.0.0.1:{pr.port}", "--workload", args.workload]
        if args.n:
            cmd += ["--n", str(args.n)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        sock.close()
        t.join(2)
    # The script calls, and the plans that submissions write to staging keys just before.
    plan_write = re.compile(rb'\] "(HSET|PEXPIRE|DEL)" "[^"]*:staging:')
    kept = [ln.decode("utf-8", "replace") for ln in lines
            if b"[0 lua]" not in ln and (b'] "FCALL" ' in ln or plan_write.search(ln))]
    with open(args.file, "w") as f:
        f.write("\n".join(kept) + "\n")
    print(f"{len(kept)} script calls and plan writes written to {args.file}")


# --- replay ---------------------------------------------------------------------------------
ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}


def parse_monitor_line(line):
    """The quoted arguments of one MONITOR line (sdscatrepr escapes)."""
    out, i, n = [], line.index("]") + 1, len(line)
    while i < n:
        if line[i] != '"':
            i += 1
            continue
        i += 1
        buf = bytearray()
        while line[i] != '"':
            c = line[i]
            if c == "\\":
                d = line[i + 1]
                if d == "x":
                    buf.append(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                buf += ESC[d]
                i += 2
                continue
            buf += c.encode()
            i += 1
        out.append(bytes(buf))
        i += 1
    return out


def wrap_body(name, prefix, body):
    """Times the script's own file with TIME; adds to prof:<name>."""
    return (prefix + "local __t = redis.call('TIME')\nlocal function __body()\n" + body +
            "\nend\nlocal __r = __body()\nlocal __e = redis.call('TIME')\n"
            f"redis.call('INCRBY', 'prof:{name}', (__e[1] - __t[1]) * 1000000 + (__e[2] - __t[2]))\n"
            "return __r\n")


def wrap_alloc(name, prefix, body):
    """Lua heap allocated by the script's own file (GC stopped meanwhile); adds KB to alloc:<name>."""
    return (prefix + "collectgarbage('stop')\nlocal __k0 = collectgarbage('count')\n"
            "local function __body()\n" + body + "\nend\nlocal __r = __body()\n"
            "local __k1 = collectgarbage('count')\ncollectgarbage('restart')\n"
            f"redis.call('INCRBYFLOAT', 'alloc:{name}', __k1 - __k0)\nreturn __r\n")


def wrap_fn(prefix, body, fn):
    """Times every call of the prefix's local function fn; adds to fprof:us and fprof:n."""
    w = ("local __acc, __n = 0, 0\n"
         "local function __now() local t = redis.call('TIME'); return t[1] * 1000000 + t[2] end\n"
         f"do local __orig = {fn}; {fn} = function(...) local t0 = __now(); "
         "local a, b, c, d = __orig(...); __acc = __acc + __now() - t0; __n = __n + 1; "
         "return a, b, c, d end end\n"
         "local function __body()\n" + body + "\nend\n"
         "local __r = __body()\n"
         "redis.call('INCRBY', 'fprof:us', __acc); redis.call('INCRBY', 'fprof:n', __n)\n"
         "return __r\n")
    return prefix + w


def script_of(call):
    """The script a recorded call ran (FCALL wf_<hash>_<script> ...), None for a command."""
    if call[0].upper() != b"FCALL":
        return None
    return call[1].decode().rsplit("_", 1)[1]


def replay(r, stream, originals, variants, lib=None):
    """Runs the stream: with `lib` (the library's source), as FCALLs of its functions, as the
    broker does; else each script with EVAL (prefix + own file), variants (name -> source) in
    place of the original scripts."""
    if lib:
        r.execute_command("FUNCTION", "LOAD", "REPLACE", lib)
    else:
        loaded = {name: r.script_load(variants.get(name, prefix + body))
                  for name, (prefix, body) in originals.items()}
    ns_old = next(a[3] for a in stream if script_of(a))
    ns_new = b"replay"
    calls = collections.Counter()
    r.config_resetstat()
    c0 = r.info("cpu")
    p = r.pipeline(transaction=False)
    for a in stream:
        name = script_of(a)
        if name is None:  # a plan written to its staging key
            args = list(a)
            if args[1].startswith(ns_old + b":"):
                args[1] = ns_new + args[1][len(ns_old):]
            p.execute_command(*args)
            continue
        if name not in originals:
            raise SystemExit(f"a call of a script not in {LUA}: {name}")
        calls[name] += 1
        args = list(a)
        if lib:
            args[0], args[1] = "FCALL", f"wfr_{name}"
        else:
            args[0], args[1] = "EVALSHA", loaded[name]
        args[3] = ns_new if a[3] == ns_old else a[3]
        p.execute_command(*args)
    res = p.execute(raise_on_error=False)
    c1 = r.info("cpu")
    cs = r.info("commandstats")
    for k in r.scan_iter(match="replay:*", count=1000):
        r.unlink(k)
    errors = [x for x in res if isinstance(x, Exception)]
    outer = "cmdstat_fcall" if lib else "cmdstat_evalsha"
    # (The plans' HSET, PEXPIRE and DEL count among the commands, as they do for Redis.)
    inner = {k[len("cmdstat_"):]: v for k, v in cs.items()
             if k not in (outer, "cmdstat_config|resetstat", "cmdstat_info")}
    return {
        "cpu_ms": (c1["used_cpu_user"] + c1["used_cpu_sys"] - c0["used_cpu_user"] - c0["used_cpu_sys"]) * 1000,
        "scripts_ms": cs[outer]["usec"] / 1000,
        "inner_ms": sum(v["usec"] for v in inner.values()) / 1000,
        "inner_calls": sum(v["calls"] for v in inner.values()),
        "inner": inner, "calls": calls, "errors": errors,
    }


def calibrate(r, prefix):
    """Cost of the instrumentation of one call, in microseconds: wrap_fn on an empty function."""
    probe = prefix + "local function probe(x) return x end\n"
    r.delete("fprof:us", "fprof:n")
    r.eval(wrap_fn(probe, "for i = 1, 20000 do probe(i) end\nreturn 1", "probe"), 0, "x", "0")
    return int(r.get("fprof:us")) / int(r.get("fprof:n"))


def count_instructions(stream, originals, lib, repeat):
    """Instructions redis-server executes for the stream, counted by valgrind's callgrind (about
    50 times slower than running it, but the same count on a busy machine as on a quiet one)."""
    out = f"/tmp/lua_profile_cg_{os.getpid()}"
    wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    ctl = lambda *a: subprocess.run(["callgrind_control", *a], check=True, capture_output=True)
    with PrivateRedis(wrap) as pr:
        replay(pr.r, stream, originals, {}, lib)  # loads the library, warms the allocator
        ctl("-i", "on", str(pr.proc.pid))
        counts = []
        for i in range(repeat):
            ctl("-z", str(pr.proc.pid))
            replay(pr.r, stream, originals, {}, lib)
            ctl("-d", str(pr.proc.pid))
            dumps = sorted((f for f in os.listdir("/tmp") if f.startswith(os.path.basename(out) + ".")),
                           key=lambda f: int(f.rsplit(".", 1)[1]))
            with open(os.path.join("/tmp", dumps[-1])) as f:
                counts += [int(ln.split()[1]) for ln in f if ln.startswith("totals:")]
    keep = os.environ.get("LUA_PROFILE_KEEP")  # a path: keep the last dump (callgrind_annotate)
    for f in sorted(os.listdir("/tmp")):
        if f.startswith(os.path.basename(out)):
            if keep and f == dumps[-1]:
                os.replace(os.path.join("/tmp", f), keep)
            else:
                os.unlink(os.path.join("/tmp", f))
    return counts


def replay_cmd(args):
    with open(args.file) as f:
        stream = [parse_monitor_line(ln) for ln in f if ln.strip()]
    # A call answered "Function not found" is sent again after FUNCTION LOAD; MONITOR shows
    # both. Workflow ids are unique, so a repeated submit is such a retry (other scripts are not
    # deduplicated).
    originals, shared_src = scripts()
    lib = library(originals, shared_src)
    seen, kept = set(), []
    for a in stream:
        if script_of(a) == "submit":
            if tuple(a) in seen:
                continue
            seen.add(tuple(a))
        kept.append(a)
    stream = kept
    fns = args.fns.split(",") if args.fns else HOT
    if args.instructions:
        for n in count_instructions(stream, originals, lib, args.repeat):
            print(f"{n / 1e6:.1f} M instructions of redis-server for {sum(map(bool, map(script_of, stream)))} "
                  "script calls (and the plans written before them)")
        return
    with PrivateRedis() as pr:
        r = pr.r
        base = [replay(r, stream, originals, {}, lib) for _ in range(args.repeat)]
        b = min(base, key=lambda x: x["cpu_ms"])
        if b["errors"]:
            print(f"warning: {len(b['errors'])} script errors, first: {b['errors'][0]}")
        print(f"{sum(b['calls'].values())} script calls: {dict(b['calls'])}")
        print(f"Redis CPU {b['cpu_ms']:.1f} ms (best of {args.repeat}); FCALL {b['scripts_ms']:.1f} ms, of which "
              f"{b['inner_ms']:.1f} ms in {b['inner_calls']} commands (run by the scripts, and the plans' "
              "writes before them):")
        for k, v in sorted(b["inner"].items(), key=lambda kv: -kv[1]["usec"]):
            print(f"  {k:14s} {v['calls']:7d} calls {v['usec'] / 1000:8.1f} ms  {v['usec_per_call']:6.2f} us/call")
        variants = {n: wrap_body(n, p, b) for n, (p, b) in originals.items()}
        for k in r.keys("prof:*"):
            r.delete(k)
        replay(r, stream, originals, variants)
        print("time inside each script's body (TIME around it):")
        for n in originals:
            us = int(r.get(f"prof:{n}") or 0)
            if us:
                print(f"  {n:10s} {b['calls'][n]:6d} calls {us / 1000:8.1f} ms  {us / b['calls'][n]:8.1f} us/call")
        replay(r, stream, originals, {n: wrap_alloc(n, p, b) for n, (p, b) in originals.items()})
        print("Lua heap allocated inside each script's body (garbage for Lua's collector):")
        for n in originals:
            kb = float(r.get(f"alloc:{n}") or 0)
            if kb:
                print(f"  {n:10s} {kb / 1024:8.1f} MB  {kb * 1024 / b['calls'][n]:9.0f} bytes/call")
        over = calibrate(r, originals["settle"][0])
        print(f"functions that settle.lua calls, including their callees (instrumentation {over:.2f} "
              "us/call subtracted):")
        prefix = originals["settle"][0]
        for fn in fns:
            if not re.search(r"local\s+(function\s+)?" + re.escape(fn) + r"\b", prefix):
                print(f"  {fn:12s} (not a local function of the engine; skipped)")
                continue
            r.delete("fprof:us", "fprof:n")
            replay(r, stream, originals, {"settle": wrap_fn(*originals["settle"], fn)})
            us, n = int(r.get("fprof:us") or 0), int(r.get("fprof:n") or 0)
            if n:
                net = us - n * over
                print(f"  {fn:12s} {n:7d} calls {net / 1000:8.1f} ms  {net / n:7.2f} us/call")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("record")
    a.add_argument("workload")
    a.add_argument("file")
    a.add_argument("--n", type=int)
    a = sub.add_parser("replay")
    a.add_argument("file")
    a.add_argument("--fns", help="comma-separated functions of common.lua / engine.lua to time "
                                 "(default: the hot path of settle.lua)")
    a.add_argument("--repeat", type=int, default=3)
    a.add_argument("--rev", help="take the scripts from this git revision (default: the work tree)")
    a.add_argument("--instructions", action="store_true",
                   help="only count the instructions Redis executes for the stream (valgrind "
                        "callgrind), --repeat times: reproducible where CPU times are not")

    args = ap.parse_args()
    global REV
    REV = getattr(args, "rev", None)
    record(args) if args.cmd == "record" else replay_cmd(args)


if __name__ == "__main__":
    main()
