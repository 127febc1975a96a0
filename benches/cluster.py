"""Ballista benchmark: the same queries over Flight SQL on the local engine and
on a Ballista cluster (`audience scheduler` + 1 or 2 `audience executor`s on
this machine): per-query overhead on short dashboard queries, and the Q1
funnel on 1 vs 2 executors, over the member-range files and over a copy
bucketed by member_id % 25 (no layout); the server's and executors' peak memory.

Usage (from the repo root, after `cargo build --release` and
`audience gen --scale m`; the test venv has every package this needs):
  .venv/bin/python benches/cluster.py --audience target/release/audience --data data/m
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone

from bench_server import connect, free_port, start_server

# Q1 of the benchmark workload, over the table given
FUNNEL = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "queries", "q1_funnel", "audience.sql")).read()
QUERIES = {
    "profile_lookup": "SELECT * FROM members WHERE member_id = 4242",
    "pay_count_1k_members": "SELECT count(*) FROM events WHERE event = 'pay' AND member_id < 1000",
    "q1_funnel": FUNNEL.format(events="events"),
    # the same events without the layout: files bucketed by member_id % 25, so
    # every file spans all members and events are shuffled by member_id
    "q1_funnel_no_layout": FUNNEL.format(events="events_no_layout"),
}


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return None


def start_cluster(binary, executors, work):
    """A scheduler and `executors` executors sharing this machine's cores."""
    scheduler = f"127.0.0.1:{free_port()}"
    quiet = {**os.environ, "AUDIENCE_LOG": "error"}
    procs = [subprocess.Popen([binary, "scheduler", "--addr", scheduler], env=quiet,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    tasks = max(1, os.cpu_count() // executors)
    for i in range(executors):
        log = open(os.path.join(work, f"executor-{executors}-{i}.log"), "w")
        procs.append(subprocess.Popen(
            [binary, "executor", "--addr", f"127.0.0.1:{free_port()}", "--grpc-port", str(free_port()),
             "--scheduler", scheduler, "--tasks", str(tasks),
             "--work-dir", tempfile.mkdtemp(dir=work)],
            env={**os.environ, "AUDIENCE_LOG": "warn,ballista_executor::executor_server=info"},
            stdout=subprocess.DEVNULL, stderr=log))
    deadline = time.time() + 60
    while time.time() < deadline:
        logs = [open(os.path.join(work, f"executor-{executors}-{i}.log")).read() for i in range(executors)]
        if all("registration succeed" in text for text in logs):
            return procs, f"df://{scheduler}", tasks
        time.sleep(0.2)
    raise RuntimeError("executors did not register")


def measure(url, runs, procs):
    """Median time of each query, its answer, and the peak memory (MB) of each
    process in `procs` once that query has run (cumulative: the peak so far)."""
    conn = connect(url)
    cur = conn.cursor()
    out = {}
    for name, sql in QUERIES.items():
        cur.execute(sql)
        answer = cur.fetchall()  # warm-up, and the answer compared across setups
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            times.append(time.perf_counter() - t)
        out[name] = {"median_ms": round(statistics.median(times) * 1e3, 1),
                     "runs_ms": [round(t * 1e3, 1) for t in times], "answer": [list(r) for r in answer],
                     "peak_rss_mb_so_far": [peak_rss_mb(p.pid) for p in procs]}
    conn.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audience", default="target/release/audience")
    ap.add_argument("--data", default="data/m")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="benches/results")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    work = tempfile.mkdtemp(prefix="audience-cluster-bench-")
    no_layout = os.path.join(work, "events_no_layout")
    subprocess.run([args.audience, "query", "--data", data,
                    f"COPY (SELECT *, member_id % 25 AS bucket FROM events) TO '{no_layout}/' "
                    "STORED AS PARQUET PARTITIONED BY (bucket)"],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "AUDIENCE_LOG": "error"})
    setups = {}
    for executors in [0, 1, 2]:
        name = "local" if executors == 0 else f"ballista_{executors}_executor{'s' * (executors > 1)}"
        procs, remote, tasks = ([], "", None) if executors == 0 else start_cluster(args.audience, executors, work)
        config = (f'[engine]\nremote = "{remote}"\n[data]\ndir = "{data}"\n'
                  f'[tables]\nevents_no_layout = "{no_layout}"\n')
        server, url = start_server(args.audience, work, config,
                                   name=name)
        try:
            # the server (the whole engine when local), then the executors
            result = measure(url, args.runs, [server, *procs[1:]])
            setups[name] = {"executors": executors, "tasks_per_executor": tasks, "queries": result}
        finally:
            for p in [server, *procs]:
                p.terminate()
                p.wait()
    reference = setups["local"]["queries"]
    for name, setup in setups.items():
        for q, r in setup["queries"].items():
            if r["answer"] != reference[q]["answer"]:
                raise SystemExit(f"{name} {q}: answer differs from local")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}", "data": args.data, "runs": args.runs,
        "queries": QUERIES, "setups": setups,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{datetime.now().date()}-cluster-{os.path.basename(data)}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2, default=str)
    print("| query | " + " | ".join(setups) + " |")
    print("|---|" + "---|" * len(setups))
    for q in QUERIES:
        print(f"| {q} | " + " | ".join(f"{s['queries'][q]['median_ms']} ms" for s in setups.values()) + " |")
    print("\npeak memory (MB: server, then executors) after each query, cumulative")
    for q in QUERIES:
        print(f"| {q} | " + " | ".join(str(s["queries"][q]["peak_rss_mb_so_far"]) for s in setups.values()) + " |")
    print(f"written {path}")


if __name__ == "__main__":
    main()
