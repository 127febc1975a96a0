"""Behavioral aggregates benchmark: Audience against ClickHouse (chDB) on the same
Parquet files, in one run, interleaved (A B A B ...), one warm-up then N counted runs.

Every run is a fresh child process, so each engine's peak memory (max RSS) is its
own; the time is the query's own wall time as the engine reports it (Audience:
`--timing`, excluding process start and table registration, reported separately;
ClickHouse: around `chdb.query`). Answers must agree before anything is timed.

Usage (from the repo root, after `cargo build --release` and `audience gen --scale m`):
  .venv/bin/python benches/behavioral.py --audience target/release/audience --data data/m --runs 5
"""

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

FUNNEL_AUDIENCE = """
SELECT level, count(*) AS members FROM (
  SELECT member_id, window_funnel(604800, '', ts, event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM events WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
GROUP BY level ORDER BY level"""

FUNNEL_CLICKHOUSE = """
SELECT level, count() AS members FROM (
  SELECT member_id, windowFunnel(604800000000)(toUInt64(toUnixTimestamp64Micro(ts)),
         event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM file('{events}', Parquet) WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
GROUP BY level ORDER BY level"""

# Cohort = Monday-aligned week of a member's first payment (orders: one row per pay
# event); r[k+1] = paid in week k after it. Week arithmetic on integer microseconds
# was the fastest formulation on both engines (INTERVAL arithmetic per row is slow).
RETENTION_AUDIENCE = """
WITH c AS (SELECT member_id, (min(CAST(ts AS BIGINT)) - 345600000000) / 604800000000 AS cw FROM orders GROUP BY member_id)
SELECT to_timestamp_seconds(cw * 604800 + 345600) AS cohort,
       sum(r[1]) AS members, sum(r[2]) AS w1, sum(r[3]) AS w2, sum(r[4]) AS w3, sum(r[5]) AS w4 FROM (
  SELECT member_id, cw, retention(w = 0, w = 1, w = 2, w = 3, w = 4) AS r FROM (
    SELECT o.member_id, c.cw, (CAST(o.ts AS BIGINT) - (c.cw * 604800 + 345600) * 1000000) / 604800000000 AS w
    FROM orders o JOIN c ON o.member_id = c.member_id)
  GROUP BY member_id, cw)
GROUP BY cw ORDER BY cw"""

RETENTION_CLICKHOUSE = """
SELECT toDate(toDateTime(cw * 604800 + 345600)) AS cohort,
       sum(r[1]) AS members, sum(r[2]) AS w1, sum(r[3]) AS w2, sum(r[4]) AS w3, sum(r[5]) AS w4 FROM (
  SELECT member_id, cw, retention(w = 0, w = 1, w = 2, w = 3, w = 4) AS r FROM (
    SELECT member_id, cw, intDiv(us - (cw * 604800 + 345600) * 1000000, 604800000000) AS w FROM (
      SELECT member_id, toUnixTimestamp64Micro(ts) AS us,
             intDiv(min(toUnixTimestamp64Micro(ts)) OVER (PARTITION BY member_id) - 345600000000, 604800000000) AS cw
      FROM file('{orders}', Parquet)))
  GROUP BY member_id, cw)
GROUP BY cw ORDER BY cw"""

SEQUENCE_AUDIENCE = """
SELECT n, count(*) AS members FROM (
  SELECT member_id, sequence_count('(?1).*(?2)(?t<=3600)', ts, event = 'view', event = 'pay') AS n
  FROM events WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY n ORDER BY n"""

SEQUENCE_CLICKHOUSE = """
SELECT n, count() AS members FROM (
  SELECT member_id, sequenceCount('(?1).*(?2)(?t<=3600000000)')(toUInt64(toUnixTimestamp64Micro(ts)),
         event = 'view', event = 'pay') AS n
  FROM file('{events}', Parquet) WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY n ORDER BY n"""

QUERIES = {
    "funnel_4_steps_7d": (FUNNEL_AUDIENCE, FUNNEL_CLICKHOUSE),
    "retention_weekly_cohorts": (RETENTION_AUDIENCE, RETENTION_CLICKHOUSE),
    "sequence_count_view_pay_1h": (SEQUENCE_AUDIENCE, SEQUENCE_CLICKHOUSE),
}

CHDB_CHILD = """
import sys, time, chdb
sql = sys.stdin.read()
t = time.perf_counter()
out = chdb.query(sql, 'CSVWithNames').bytes().decode()
sys.stderr.write(f"timing: query {time.perf_counter() - t:.3f} s\\n")
sys.stdout.write(out)
"""


def run_child(cmd, stdin=None):
    """Runs one child; returns (stdout, query seconds it reported)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(stdin)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {err}")
    seconds = None
    for line in err.splitlines():
        if line.startswith("timing:"):
            seconds = float(line.split("query")[1].split("s")[0])
    return out, seconds


def max_rss_mb(cmd, stdin=None):
    """Peak memory of one child run, via GNU time."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, input=stdin, capture_output=True, text=True, check=True)
    return int(p.stderr.strip().splitlines()[-1]) / 1024


def normalise(text):
    rows = list(csv.reader(io.StringIO(text)))[1:]
    out = []
    for r in rows:
        out.append(tuple(v[:10] if len(v) >= 19 and v[4] == "-" else v for v in r))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audience", default="target/release/audience")
    ap.add_argument("--data", default="data/m")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="benches/results")
    args = ap.parse_args()
    data = Path(args.data).resolve()
    events = str(data / "events" / "*.parquet")
    audience = [args.audience, "query", "--data", str(data), "--format", "csv", "--timing"]
    clickhouse = [sys.executable, "-c", CHDB_CHILD]
    import chdb

    results = {}
    for name, (ours, theirs) in QUERIES.items():
        theirs = theirs.format(events=events, orders=str(data / "orders" / "*.parquet"))
        a_out, _ = run_child(audience + [ours])
        c_out, _ = run_child(clickhouse, theirs)
        if normalise(a_out) != normalise(c_out):
            print(f"{name}: answers differ\naudience:\n{a_out}\nclickhouse:\n{c_out}")
            return 1
        times = {"audience": [], "clickhouse": []}
        startup = []
        for _ in range(args.runs):
            _, t = run_child(audience + [ours])
            times["audience"].append(t)
            _, t = run_child(clickhouse, theirs)
            times["clickhouse"].append(t)
        memory = {"audience": max_rss_mb(audience + [ours]), "clickhouse": max_rss_mb(clickhouse, theirs)}
        results[name] = {
            "rows": len(normalise(a_out)),
            "seconds": times,
            "median": {k: statistics.median(v) for k, v in times.items()},
            "min": {k: min(v) for k, v in times.items()},
            "max": {k: max(v) for k, v in times.items()},
            "peak_memory_mb": memory,
        }
        m = results[name]["median"]
        print(f"{name}: audience {m['audience']:.3f} s, clickhouse {m['clickhouse']:.3f} s, "
              f"ratio {m['clickhouse'] / m['audience']:.2f}x, memory {memory['audience']:.0f} / {memory['clickhouse']:.0f} MB",
              flush=True)

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    context = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "audience_commit": rev,
        "chdb": chdb.__version__,
        "cores": os.cpu_count(),
        "machine": platform.platform(),
        "data": str(data),
        "runs": args.runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{context['date'][:10]}-behavioral-{data.name}.json"
    path.write_text(json.dumps({"context": context, "results": results}, indent=2))
    print(f"\n| query | Audience (s) | ClickHouse (s) | ClickHouse / Audience | peak MB Audience / ClickHouse |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        m = r["median"]
        print(f"| {name} | {m['audience']:.3f} | {m['clickhouse']:.3f} | {m['clickhouse'] / m['audience']:.2f}x | "
              f"{r['peak_memory_mb']['audience']:.0f} / {r['peak_memory_mb']['clickhouse']:.0f} |")
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
