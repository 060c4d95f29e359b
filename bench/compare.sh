#!/usr/bin/env bash
# Ours (examples/bench.rs) against the Python reference (dramatiq-workflow 0.3.0 on dramatiq
# 2.2.1) on the same private redis-server, one after the other, RUNS runs of each workload, then
# a side-by-side table with ratios and a chart.
#
#   bench/compare.sh                      # everything (about 5 minutes on 2 cores)
#   RUNS=1 bench/compare.sh diamond chain # fewer runs, some workloads
#
# Environment: RUNS (3), OUT (bench/results), OURS_FLAGS (worker flags of ours, default
# "--processes 1 --concurrency 32"), PEER_FLAGS ("--processes 2 --threads 8", the reference's
# best on 2 cores), POLL_MS (100: the longest idle pause between fetches of an idle queue, for
# both systems; both default to 1000).
#
# Needs redis-server (installed with apt-get if missing), python3 with venv, cargo. The Python
# side lives in bench/.venv, created here. The Redis server listens on 127.0.0.1 on a free port
# and is stopped, by its own PID, at the end. Nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
OUT=${OUT:-$ROOT/bench/results}
POLL_MS=${POLL_MS:-100}
OURS_FLAGS=${OURS_FLAGS:---processes 1 --concurrency 32}
PEER_FLAGS=${PEER_FLAGS:---processes 2 --threads 8}
WORKLOADS=${*:-diamond fanout chain plain two_stage}
PY=$ROOT/bench/.venv/bin/python
T_START=$(date +%s)

# --- prerequisites ---------------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
if ! "$PY" -c "import dramatiq, dramatiq_workflow" 2>/dev/null; then
  echo "creating bench/.venv with dramatiq[redis]==2.2.1 and dramatiq-workflow==0.3.0"
  if ! python3 -m venv "$ROOT/bench/.venv" 2>/dev/null; then
    echo "installing python3-venv (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$ROOT/bench/.venv"
    python3 -m venv "$ROOT/bench/.venv"
  fi
  "$PY" -m pip install -q --disable-pip-version-check "dramatiq[redis]==2.2.1" "dramatiq-workflow==0.3.0"
fi
echo "building examples/bench.rs (release)"
cargo build --release --quiet --example bench
BENCH=$ROOT/target/release/examples/bench

# --- a private redis-server ------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  --logfile "" >/dev/null &
REDIS_PID=$!
cleanup() { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$PORT" ping >/dev/null
URL=redis://127.0.0.1:$PORT
echo "private redis-server pid $REDIS_PID on $URL"

mkdir -p "$OUT"
rm -f "$OUT/ours.jsonl" "$OUT/peer.jsonl"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain -- workflow-runtime src examples 2>/dev/null | grep -q . && echo ' plus uncommitted changes')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB; kernel $(uname -r)"
  echo "redis: $(redis-server --version | cut -d' ' -f3-4) (private, 127.0.0.1, no persistence)"
  echo "rust: $(rustc --version)"
  echo "python: $("$PY" --version 2>&1); $("$PY" -m pip list 2>/dev/null | grep -iE '^(dramatiq|dramatiq-workflow|redis) ' | tr -s ' ' | paste -sd ';' -)"
  echo "runs: $RUNS per workload and system; idle poll cap ${POLL_MS} ms for both"
  echo "ours: $OURS_FLAGS; peer: $PEER_FLAGS"
  echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

# --- the runs --------------------------------------------------------------------------------
for w in $WORKLOADS; do
  echo "== ours: $w"
  # shellcheck disable=SC2086
  timeout 900 "$BENCH" --url "$URL" --workload "$w" --runs "$RUNS" --poll-ms "$POLL_MS" $OURS_FLAGS \
    >> "$OUT/ours.jsonl"
done
for w in $WORKLOADS; do
  echo "== Python reference: $w"
  # dramatiq's consumers sleep at most dramatiq_worker_timeout ms when their queue is idle.
  # shellcheck disable=SC2086
  dramatiq_worker_timeout=$POLL_MS timeout 900 "$PY" "$ROOT/bench/peer/peer_bench.py" "$w" --url "$URL" \
    --runs "$RUNS" $PEER_FLAGS >> "$OUT/peer.jsonl"
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
echo
python3 "$ROOT/bench/report.py" "$OUT"
echo "compare.sh took $(( $(date +%s) - T_START )) s"
