"""Benchmark helper for benches/tag_segment.py (the workload itself is `audience bench`): the same queries on
Audience, ClickHouse (chDB) and DuckDB over the same Parquet files, in one run,
interleaved (A B C A B C ...), after each engine's answer is checked equal.

Every run is a fresh child process, so each engine's peak memory (max RSS) is its
own; the time is the query's own wall time as the engine reports it (Audience:
`--timing`, excluding process start and table registration; ClickHouse and
DuckDB: around the query call in the child).
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
from datetime import datetime, timezone
from pathlib import Path

CHDB_CHILD = """
import sys, time, chdb
sql = sys.stdin.read()
t = time.perf_counter()
out = chdb.query(sql, 'CSVWithNames').bytes().decode()
sys.stderr.write(f"timing: query {time.perf_counter() - t:.3f} s\\n")
sys.stdout.write(out)
"""

DUCKDB_CHILD = """
import csv, sys, time, duckdb
sql = sys.stdin.read()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
rel = con.sql(sql)
rows = rel.fetchall()
sys.stderr.write(f"timing: query {time.perf_counter() - t:.3f} s\\n")
w = csv.writer(sys.stdout, lineterminator="\\n")
w.writerow(rel.columns)
w.writerows(rows)
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
    """CSV rows without the header; timestamps cut to their date."""
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return [tuple(v[:10] if len(v) >= 19 and v[4] == "-" else v for v in r) for r in rows]


def engines(audience_binary, data):
    """Each engine's command line; ClickHouse and DuckDB read the SQL on stdin."""
    return {
        "audience": ([audience_binary, "query", "--data", str(data), "--format", "csv", "--timing"], False),
        "clickhouse": ([sys.executable, "-c", CHDB_CHILD], True),
        "duckdb": ([sys.executable, "-c", DUCKDB_CHILD], True),
    }


def run(suite, queries, description):
    """Runs `queries` ({name: {engine: sql with {events}/{orders}/{members}/... placeholders}})."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--audience", default="target/release/audience")
    ap.add_argument("--data", default="data/m")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="benches/results")
    args = ap.parse_args()
    data = Path(args.data).resolve()
    tables = {t: str(data / t / "*.parquet") for t in ["events", "orders", "members", "member_tags", "identities"]}
    commands = engines(args.audience, data)

    def child(engine, sql):
        # "audience_sql" and the like: Audience running another formulation.
        cmd, stdin = commands["audience" if engine.startswith("audience") else engine]
        return (cmd, sql) if stdin else (cmd + [sql], None)

    results = {}
    for name, by_engine in queries.items():
        sqls = {e: q.format(**tables) for e, q in by_engine.items()}
        answers = {e: normalise(run_child(*child(e, q))[0]) for e, q in sqls.items()}
        reference = answers["audience"]
        for e, a in answers.items():
            if a != reference:
                print(f"{name}: {e} answers differently from audience\naudience: {reference[:10]}\n{e}: {a[:10]}")
                return 1
        times = {e: [] for e in sqls}
        for _ in range(args.runs):
            for e, q in sqls.items():
                times[e].append(run_child(*child(e, q))[1])
        memory = {e: max_rss_mb(*child(e, q)) for e, q in sqls.items()}
        median = {e: statistics.median(v) for e, v in times.items()}
        results[name] = {
            "rows": len(reference),
            "seconds": times,
            "median": median,
            "min": {e: min(v) for e, v in times.items()},
            "max": {e: max(v) for e, v in times.items()},
            "peak_memory_mb": memory,
        }
        print(f"{name}: " + ", ".join(f"{e} {median[e]:.3f} s / {memory[e]:.0f} MB" for e in sqls), flush=True)

    import chdb
    import duckdb

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    context = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "audience_commit": rev,
        "chdb": chdb.__version__,
        "duckdb": duckdb.__version__,
        "cores": os.cpu_count(),
        "machine": platform.platform(),
        "data": str(data),
        "runs": args.runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{context['date'][:10]}-{suite}-{data.name}.json"
    path.write_text(json.dumps({"context": context, "results": results}, indent=2))
    peers = [e for e in next(iter(results.values()))["median"] if e != "audience"]
    print("\n| query | Audience (s) | " + " | ".join(f"{p} (s)" for p in peers) + " | fastest peer ÷ Audience | peak MB " + " / ".join(["audience"] + peers) + " |")
    print("|---|---|" + "---|" * len(peers) + "---|---|")
    for name, r in results.items():
        m = r["median"]
        fastest = min(m[p] for p in peers)
        mem = " / ".join(f"{r['peak_memory_mb'][e]:.0f}" for e in ["audience"] + peers)
        print(f"| {name} | {m['audience']:.3f} | " + " | ".join(f"{m[p]:.3f}" for p in peers) + f" | {fastest / m['audience']:.2f}x | {mem} |")
    print(f"\nwritten {path}")
    return 0
