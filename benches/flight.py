"""Flight SQL benchmark: what dashboards and notebooks see over the wire.

- member-profile point query (`SELECT * FROM members WHERE member_id = ?`,
  prepared, a new id each time) with N concurrent clients: p50 / p99 latency;
- 32 clients x 50 mixed queries (lookups, counts, funnels): p50 / p99, errors;
- streaming throughput of a wide result (every events column) to one local client;
- the Q1 funnel over Flight SQL against the same query in-process
  (`audience query --timing`), interleaved, median of --runs.

Usage (from the repo root, after `cargo build --release` and `audience gen --scale s`):
  .venv/bin/python benches/flight.py --audience target/release/audience --data data/s
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

import adbc_driver_flightsql
from bench_server import connect, start_server

FUNNEL = (
    "SELECT level, count(*) AS members FROM (SELECT member_id, window_funnel(604800, '', ts, "
    "event = 'view', event = 'cart', event = 'order', event = 'pay') AS level FROM events "
    "WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id) GROUP BY level ORDER BY level"
)
MIX = [
    ("SELECT * FROM members WHERE member_id = ?", True),
    ("SELECT event, count(*) FROM events WHERE member_id = ? GROUP BY event", True),
    ("SELECT count(*) FROM events WHERE event = 'pay' AND member_id < 1000", False),
    ("SELECT level, count(*) FROM (SELECT member_id, window_funnel(604800, '', ts, event = 'view', "
     "event = 'cart', event = 'order', event = 'pay') AS level FROM events WHERE member_id < 2000 "
     "GROUP BY member_id) GROUP BY level", False),
]


def start(binary, data, work):
    return start_server(binary, work, f'[data]\ndir = "{os.path.abspath(data)}"\n\n'
                        '[server]\nmax_concurrent_queries = 16\n')


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def concurrent(url, clients, per_client, pick, members):
    latencies, errors, lock = [], [], threading.Lock()

    def client(i):
        conn = connect(url)
        cur = conn.cursor()
        for j in range(per_client):
            sql, param = pick(i, j)
            args = ((i * 7919 + j * 104729) % members + 1,) if param else None
            t = time.perf_counter()
            try:
                cur.execute(sql, parameters=args)
                cur.fetch_arrow_table()
                with lock:
                    latencies.append(time.perf_counter() - t)
            except Exception as e:
                with lock:
                    errors.append(str(e))
        cur.close()
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients, "queries": len(latencies), "errors": len(errors),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "qps": round(len(latencies) / wall, 1),
        "first_error": errors[0] if errors else None,
    }


def throughput(url):
    conn = connect(url)
    cur = conn.cursor()
    t = time.perf_counter()
    cur.execute("SELECT * FROM events")
    rows = nbytes = 0
    for batch in cur.fetch_record_batch():
        rows += batch.num_rows
        nbytes += batch.nbytes
    seconds = time.perf_counter() - t
    conn.close()
    return {"rows": rows, "bytes": nbytes, "seconds": round(seconds, 3),
            "gb_per_s": round(nbytes / seconds / 1e9, 3)}


def funnel(url, binary, data, runs):
    conn = connect(url)
    cur = conn.cursor()
    flight, local = [], []
    for _ in range(runs + 1):  # first round is the warm-up
        t = time.perf_counter()
        cur.execute(FUNNEL)
        over = cur.fetch_arrow_table()
        flight.append(time.perf_counter() - t)
        out = subprocess.run([binary, "query", "--data", data, "--timing", "--format", "csv", FUNNEL],
                             capture_output=True, text=True, check=True)
        local.append(float(out.stderr.split("query")[1].split("s")[0]))
        assert over.num_rows == len(out.stdout.strip().splitlines()) - 1
    conn.close()
    f, l = statistics.median(flight[1:]), statistics.median(local[1:])
    return {"flight_s": round(f, 3), "in_process_s": round(l, 3),
            "overhead_pct": round(100 * (f - l) / l, 1), "runs": runs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audience", default="target/release/audience")
    ap.add_argument("--data", default="data/s")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--lookups", type=int, default=200, help="point queries per client")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="benches/results")
    a = ap.parse_args()
    members = int(subprocess.run([a.audience, "query", "--data", a.data, "--format", "csv",
                                  "SELECT max(member_id) FROM members"],
                                 capture_output=True, text=True, check=True).stdout.split()[1])
    with tempfile.TemporaryDirectory() as work:
        proc, url = start(a.audience, a.data, work)
        try:
            concurrent(url, 2, 20, lambda i, j: MIX[0], members)  # warm-up
            result = {
                "point_query": concurrent(url, a.clients, a.lookups, lambda i, j: MIX[0], members),
                "mixed_32x50": concurrent(url, 32, 50, lambda i, j: MIX[(i + j) % len(MIX)], members),
                "throughput": throughput(url),
                "funnel": funnel(url, a.audience, a.data, a.runs),
            }
        finally:
            proc.terminate()
            proc.wait()
    context = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": a.data, "members": members, "cores": os.cpu_count(),
        "machine": platform.platform(), "adbc_driver_flightsql": adbc_driver_flightsql.__version__,
        "python": platform.python_version(), "arguments": vars(a),
    }
    report = {"context": context, "results": result}
    os.makedirs(a.out, exist_ok=True)
    scale = os.path.basename(os.path.normpath(a.data))
    path = os.path.join(a.out, f"{datetime.now():%Y-%m-%d}-flight-{scale}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    json.dump(result, sys.stdout, indent=2)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
