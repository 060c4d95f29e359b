#!/usr/bin/env python3
"""Side-by-side table, target check and chart from the JSON lines of bench/compare.sh.

    report.py DIR [--update-benchmarks]
        reads DIR/ours.jsonl and DIR/peer.jsonl (and DIR/env.txt), writes DIR/table.md and
        DIR/tasks_per_s.svg, prints the table; with --update-benchmarks also replaces the
        results section of BENCHMARKS.md (between its results markers) with them.

Each figure is the median over the runs of a configuration, with [min..max] when there are
several. Ratios are ours / peer (medians). No third-party modules.
"""

import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["diamond", "fanout", "chain", "plain", "two_stage"]
LABEL = {
    "diamond": "diamond: 8-task workflow x {n}",
    "fanout": "fanout: Chain(Group({n}), t)",
    "chain": "chain of {n}",
    "plain": "plain: {n} messages",
    "two_stage": "two_stage: Chain(Group({n}), Group({n}), t)",
}
# (key, label, format, better): better is "high" or "low"
METRICS = [
    ("wall_s", "wall time, s", "{:.3f}", "low"),
    ("tasks_per_s", "tasks/s", "{:,.0f}", "high"),
    ("workflows_per_s", "workflows/s", "{:,.1f}", "high"),
    ("hop_ms", "hop latency, ms", "{:.3f}", "low"),
    ("round_trips_per_task", "client round trips / task", "{:.3f}", "low"),
    ("redis_cmds_per_task", "Redis commands / task (incl. in scripts)", "{:.2f}", "low"),
    ("redis_cpu_ms_per_task", "Redis CPU ms / task", "{:.4f}", "low"),
    ("redis_in_bytes_per_task", "bytes sent to Redis / task", "{:,.0f}", "low"),
    ("worker_cpu_ms_per_task", "worker CPU ms / task", "{:.4f}", "low"),
    ("redis_mem_peak_bytes", "peak Redis memory during the run, MB", "mb", "low"),
    ("redis_mem_state_bytes", "Redis memory of the submitted state, MB", "mb", "low"),
]
# Targets of the issue: (workload or "workflow" = every workflow workload, key, op, bound, text)
TARGETS = [
    ("diamond", "tasks_per_s", ">=", 20000, "diamond tasks/s >= 20,000"),
    ("fanout", "tasks_per_s", ">=", 20000, "fanout tasks/s >= 20,000"),
    ("chain", "hop_ms", "<=", 1.0, "chain hop latency <= 1 ms"),
    ("plain", "tasks_per_s", ">=", 30000, "plain tasks/s >= 30,000"),
    ("workflow", "round_trips_per_task", "<=", 1.2, "client round trips per workflow task <= 1.2"),
    ("workflow", "redis_cmds_per_task", "<=", 10, "Redis commands per workflow task <= 10"),
    ("workflow", "redis_cpu_ms_per_task", "<=", 0.02, "Redis CPU per workflow task <= 0.02 ms"),
    ("two_stage", "redis_mem_peak_bytes", "<=", 2e6, "two_stage Redis memory <= 2 MB: peak during the run"),
    ("two_stage", "redis_mem_state_bytes", "<=", 2e6, "two_stage Redis memory <= 2 MB: the submitted state"),
]
WORKFLOW_LOADS = ["diamond", "fanout", "chain", "two_stage"]


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def fmt(v, f):
    if v is None:
        return "-"
    if f == "mb":
        return f"{v / 1e6:,.2f}"
    return f.format(v)


def cell(vals, f):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med, f)
    return f"{fmt(med, f)} [{fmt(min(vals), f)}..{fmt(max(vals), f)}]"


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def by_workload(rows):
    out = {}
    for r in rows:
        out.setdefault(r.get("workload"), []).append(r)
    return out


def config(rows):
    r = next((r for r in rows if r.get("ok")), rows[0] if rows else {})
    if not r:
        return "-"
    return f"{r.get('processes')} proc x {r.get('concurrency')}"


def table(ours, peer):
    o, p = by_workload(ours), by_workload(peer)
    lines = ["| workload | metric | workflow (ours) | Python reference | ours / peer |",
             "|---|---|---:|---:|---:|"]
    for w in WORKLOADS:
        orows = [r for r in o.get(w, []) if r.get("ok")]
        prows = [r for r in p.get(w, []) if r.get("ok")]
        onum, pnum = len(orows), len(prows)
        ototal, ptotal = len(o.get(w, [])), len(p.get(w, []))
        psys = (p.get(w) or [{}])[0].get("system", "-")
        if not o.get(w) and not p.get(w):
            continue
        n = (o.get(w) or p.get(w))[0].get("n", "?")
        lines.append(f"| **{LABEL[w].format(n=n)}** | runs ok; workers | {onum}/{ototal}; {config(o.get(w, []))} "
                     f"| {pnum}/{ptotal} ({psys}); {config(p.get(w, []))} | |")
        for key, label, f, _ in METRICS:
            ov = [r.get(key) for r in orows]
            pv = [r.get(key) for r in prows]
            if all(v is None for v in ov + pv):
                continue
            om, pm = median(ov), median(pv)
            ratio = "-"
            if om is not None and pm:
                x = om / pm
                ratio = f"{x:,.1f}x" if x >= 10 else f"{x:.2f}x" if x >= 0.01 else f"{x:.4f}x"
            lines.append(f"| | {label} | {cell(ov, f)} | {cell(pv, f)} | {ratio} |")
        for r in o.get(w, []) + p.get(w, []):
            if not r.get("ok"):
                lines.append(f"| | failed run {r.get('run')} ({r.get('system')}) | {r.get('error', '?')} | | |")
    return "\n".join(lines)


def targets(ours, peer):
    o, p = by_workload(ours), by_workload(peer)
    lines = ["| target | ours (median of runs) | Python reference (median) | met |", "|---|---:|---:|:---:|"]
    met_all = True
    for w, key, op, bound, text in TARGETS:
        loads = WORKFLOW_LOADS if w == "workflow" else [w]
        f = next(m[2] for m in METRICS if m[0] == key)
        unit = " MB" if f == "mb" else ""

        def meds(rows):
            out = []
            for lw in loads:
                m = median([r.get(key) for r in rows.get(lw, []) if r.get("ok")])
                if m is not None:
                    out.append((lw, m))
            return out

        def show(vals):
            if not vals:
                return "-"
            if len(vals) == 1:
                return f"{fmt(vals[0][1], f)}{unit}"
            return ", ".join(f"{lw} {fmt(v, f)}{unit}" for lw, v in vals)

        vals = meds(o)
        if not vals:
            lines.append(f"| {text} | no data | {show(meds(p))} | no |")
            met_all = False
            continue
        bad = [lw for lw, v in vals if not ((v >= bound) if op == ">=" else (v <= bound))]
        met_all &= not bad
        met = "yes" if not bad else ("**no**" if len(vals) == 1 else f"**no** ({', '.join(bad)})")
        lines.append(f"| {text} | {show(vals)} | {show(meds(p))} | {met} |")
    return "\n".join(lines), met_all


def chart(ours, peer, path):
    """Grouped bars, log scale: median tasks/s per workload, ours vs the reference."""
    o, p = by_workload(ours), by_workload(peer)
    data = []
    for w in WORKLOADS:
        om = median([r.get("tasks_per_s") for r in o.get(w, []) if r.get("ok")])
        pm = median([r.get("tasks_per_s") for r in p.get(w, []) if r.get("ok")])
        data.append((w, om, pm))
    W, H = 820, 440
    left, right, top, bottom = 70, 20, 50, 90
    ph = H - top - bottom
    vals = [v for _, a, b in data for v in (a, b) if v]
    lo = 10 ** math.floor(math.log10(min(vals))) if vals else 10
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 100000
    if hi <= lo:
        hi = lo * 10

    def y(v):
        return top + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph

    colors = {"ours": "#1f77b4", "peer": "#ff7f0e"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
           'No-op tasks per second (median of runs, log scale)</text>']
    d = lo
    while d <= hi * 1.0001:
        yy = y(d)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{W - right}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{d:,.0f}</text>')
        d *= 10
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>')
    slot = (W - left - right) / len(data)
    bw = slot * 0.32
    goals = {w: bound for w, key, op, bound, _ in TARGETS if key == "tasks_per_s"}
    for i, (w, om, pm) in enumerate(data):
        x0 = left + i * slot + slot * 0.16
        if w in goals and lo <= goals[w] <= hi:
            gy = y(goals[w])
            out.append(f'<line x1="{x0 - 4:.1f}" y1="{gy:.1f}" x2="{x0 + 2 * bw + 2:.1f}" y2="{gy:.1f}" '
                       'stroke="#c00" stroke-width="2" stroke-dasharray="5,3"/>')
        for j, (v, c) in enumerate(((om, colors["ours"]), (pm, colors["peer"]))):
            if not v:
                continue
            x = x0 + j * bw
            yy = y(max(v, lo))
            out.append(f'<rect x="{x:.1f}" y="{yy:.1f}" width="{bw - 2:.1f}" height="{top + ph - yy:.1f}" fill="{c}"/>')
            out.append(f'<text x="{x + bw / 2 - 1:.1f}" y="{yy - 4:.1f}" text-anchor="middle" font-size="11" '
                       'paint-order="stroke" stroke="white" stroke-width="3">'
                       f'{v:,.0f}</text>')
        out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + ph + 18}" text-anchor="middle">{w}</text>')
        if om and pm:
            out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + ph + 34}" text-anchor="middle" '
                       f'fill="#555">{om / pm:,.0f}x</text>')
    ly = H - 30
    items = [("workflow (Rust, this project)", colors["ours"], left + 10),
             ("Python: dramatiq-workflow 0.3.0 on dramatiq 2.2.1 (plain: dramatiq)", colors["peer"], left + 250)]
    for label, c, lx in items:
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{c}"/>')
        out.append(f'<text x="{lx + 16}" y="{ly}">{label}</text>')
    out.append(f'<line x1="{left + 10}" y1="{ly + 14}" x2="{left + 34}" y2="{ly + 14}" stroke="#c00" '
               'stroke-width="2" stroke-dasharray="5,3"/>')
    out.append(f'<text x="{left + 40}" y="{ly + 18}">target of issue 5 (2-core machine)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def update_benchmarks(path, text, d):
    """Replaces the part of BENCHMARKS.md between the results markers."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    with open(path) as f:
        doc = f.read()
    if start not in doc or end not in doc:
        sys.exit(f"{path} has no {start} ... {end} section")
    chart = os.path.relpath(os.path.join(d, "tasks_per_s.svg"), os.path.dirname(os.path.abspath(path)))
    block = f"{start}\n{text}\n![tasks per second, ours and the reference]({chart})\n{end}"
    head, rest = doc.split(start, 1)
    doc = head + block + rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(doc)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    d = args[0]
    ours, peer = load(os.path.join(d, "ours.jsonl")), load(os.path.join(d, "peer.jsonl"))
    t = table(ours, peer)
    tg, met = targets(ours, peer)
    chart(ours, peer, os.path.join(d, "tasks_per_s.svg"))
    env = ""
    if os.path.exists(os.path.join(d, "env.txt")):
        with open(os.path.join(d, "env.txt")) as f:
            env = "```\n" + f.read().strip() + "\n```\n\n"
    text = f"{env}{t}\n\nTargets of the issue (ours):\n\n{tg}\n"
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    if "--update-benchmarks" in sys.argv:
        update_benchmarks(os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"), text, d)
    print(f"\nall targets met: {'yes' if met else 'no'}; chart: {os.path.join(d, 'tasks_per_s.svg')}")


if __name__ == "__main__":
    main()
