"""Oracle test: Audience's customer-value and audience functions against DuckDB.

The same answers computed two ways over the same Parquet files: Audience with
its functions (`rfm`, `lifecycle_stage`, the tag index and `bitmap_*`), DuckDB
with plain SQL written from shared/SPEC.md. Compared member by member. Also
checks that our bitmaps are standard Roaring: pyroaring reads the tag index,
and Audience reads bitmaps that pyroaring wrote.

Usage: oracle.py AUDIENCE_BINARY WORK_DIR
Prints one line per comparison and exits non-zero on any mismatch.
"""

import math
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap

GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    3: ["About To Sleep", "About To Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}
DAY_US = 86_400_000_000

FAILURES = []


def audience(binary, data, sql, out, tables=()):
    args = [binary, "query", "--data", str(data), "--format", "parquet", "-o", str(out)]
    for name, path in tables:
        args += ["--table", f"{name}={path}"]
    run = subprocess.run(args + [sql], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"audience failed on {sql}:\n{run.stderr}")
    return pq.read_table(out).to_pylist()


def compare(label, ours, theirs, key="member_id", close=()):
    """Rows keyed by `key`; float columns in `close` compare with a relative tolerance."""
    mine = {r[key]: r for r in ours}
    ref = {r[key]: r for r in theirs}
    bad = []
    for k in sorted(set(mine) | set(ref), key=lambda v: (v is None, v)):
        a, b = mine.get(k), ref.get(k)
        if a is None or b is None:
            bad.append((k, a, b))
            continue
        for col, expected in b.items():
            got = a.get(col)
            if col in close and got is not None and expected is not None:
                same = math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-6)
            else:
                same = got == expected
            if not same:
                bad.append((k, col, got, expected))
                break
    print(f"{label}: {len(ref)} rows, {len(bad)} mismatches")
    for b in bad[:5]:
        print("   ", b)
    if bad or not ref:
        FAILURES.append(label)


def segment_case(r, f, m):
    whens = []
    for rr, row in GRID.items():
        for fm, seg in enumerate(row, start=1):
            whens.append(f"WHEN {r} = {rr} AND ({f} + {m} + 1) // 2 = {fm} THEN '{seg.replace(chr(39), chr(39) * 2)}'")
    return "CASE " + " ".join(whens) + " END"


def rfm_reference(con, orders, as_of, bins):
    seg = segment_case("r", "f", "m") if bins == 5 else "NULL"
    return con.sql(f"""
        WITH base AS (
          SELECT member_id,
                 (epoch_us(TIMESTAMP '{as_of}') - epoch_us(max(ts))) // {DAY_US} AS recency_days,
                 count(*) AS frequency, sum(amount) AS monetary
          FROM read_parquet('{orders}') WHERE ts <= TIMESTAMP '{as_of}' GROUP BY member_id),
        scored AS (
          SELECT *, ntile({bins}) OVER (ORDER BY recency_days DESC, member_id) AS r,
                    ntile({bins}) OVER (ORDER BY frequency, member_id) AS f,
                    ntile({bins}) OVER (ORDER BY monetary ASC NULLS FIRST, member_id) AS m
          FROM base)
        SELECT member_id, recency_days, frequency, monetary, r, f, m, {seg} AS segment FROM scored
    """).to_arrow_table().to_pylist()


def lifecycle_reference(con, members, orders, as_of, t):
    new, active, dormant, churn = (d * DAY_US for d in t)
    return con.sql(f"""
        WITH o AS (
          SELECT member_id, epoch_us(ts) AS us,
                 row_number() OVER (PARTITION BY member_id ORDER BY ts DESC) AS rn
          FROM read_parquet('{orders}') WHERE ts IS NOT NULL AND ts <= TIMESTAMP '{as_of}'),
        s AS (
          SELECT member_id, min(us) AS first, max(us) AS last, max(us) FILTER (WHERE rn = 2) AS prev
          FROM o GROUP BY member_id),
        clock AS (SELECT epoch_us(TIMESTAMP '{as_of}') AS now)
        SELECT m.member_id,
          CASE WHEN s.last IS NULL THEN 'prospect'
               WHEN now - s.first <= {new} THEN 'new'
               WHEN now - s.last <= {active} THEN
                 CASE WHEN s.prev IS NOT NULL AND s.last - s.prev > {dormant} THEN 'reactivated' ELSE 'active' END
               WHEN now - s.last <= {dormant} THEN 'at_risk'
               WHEN now - s.last <= {churn} THEN 'dormant'
               ELSE 'churned' END AS stage
        FROM read_parquet('{members}') m LEFT JOIN s ON s.member_id = m.member_id, clock
    """).to_arrow_table().to_pylist()


def adversarial_orders(path):
    """Orders with ties at bin edges, single purchases, NULL amounts, equal timestamps."""
    rnd = random.Random(11)
    rows = {"member_id": [], "ts": [], "amount": []}
    base = 1_780_000_000_000_000  # 2026-05-28
    for member in range(1, 2001):
        shape = rnd.choice(["one", "tie", "nulls", "same_ts", "plain"])
        n = 1 if shape == "one" else rnd.randint(1, 6)
        for _ in range(n):
            day = rnd.choice([0, 1, 10, 30, 31, 90, 91, 180, 181]) if shape == "tie" else rnd.randint(0, 400)
            ts = base - day * DAY_US
            if shape == "same_ts":
                ts = base - 5 * DAY_US
            amount = None if shape == "nulls" and rnd.random() < 0.7 else (
                10.0 if shape == "tie" else round(rnd.uniform(1, 500), 2))
            rows["member_id"].append(member)
            rows["ts"].append(ts)
            rows["amount"].append(amount)
    table = pa.table({
        "member_id": pa.array(rows["member_id"], pa.int64()),
        "ts": pa.array(rows["ts"], pa.timestamp("us")),
        "amount": pa.array(rows["amount"], pa.float64()),
    })
    pq.write_table(table, path)
    members = pa.table({"member_id": pa.array(range(1, 2101), pa.int64())})
    return table, members


def main():
    binary, work = sys.argv[1], Path(sys.argv[2])
    data = work / "data"
    gen = subprocess.run([binary, "gen", "--members", "3000", "--seed", "7", "--out", str(data)],
                         capture_output=True, text=True)
    if gen.returncode != 0:
        raise SystemExit(f"audience gen failed:\n{gen.stderr}")
    idx = subprocess.run([binary, "index", "tags", "--data", str(data)], capture_output=True, text=True)
    if idx.returncode != 0:
        raise SystemExit(f"audience index tags failed:\n{idx.stderr}")
    con = duckdb.connect()
    orders, members = f"{data}/orders/*.parquet", f"{data}/members/*.parquet"
    adv = work / "adv_orders.parquet"
    adv_members = work / "adv_members.parquet"
    _, m = adversarial_orders(adv)
    pq.write_table(m, adv_members)
    out = work / "out.parquet"

    # RFM
    for table, path, as_of, bins in [
        ("orders", orders, "2026-12-01 00:00:00", 5),
        ("orders", orders, "2026-07-15 12:00:00", 4),
        ("adv", adv, "2026-05-28 00:00:00", 5),
        ("adv", adv, "2026-05-28 00:00:00", 3),
        ("adv", adv, "2025-06-01 00:00:00", 5),
    ]:
        ours = audience(binary, data, f"SELECT * FROM rfm('{table}', TIMESTAMP '{as_of}', {bins})", out,
                        tables=[("adv", adv)])
        theirs = rfm_reference(con, path, as_of, bins)
        compare(f"rfm {table} as_of {as_of} bins {bins}", ours, theirs, close=("monetary",))

    # Lifecycle stages
    for table, mtable, opath, mpath, as_of, t in [
        ("orders", "members", orders, members, "2026-12-01 00:00:00", (30, 30, 90, 180)),
        ("orders", "members", orders, members, "2026-08-01 00:00:00", (14, 21, 60, 120)),
        ("adv", "advm", adv, adv_members, "2026-05-28 00:00:00", (30, 30, 90, 180)),
        ("adv", "advm", adv, adv_members, "2026-05-28 00:00:00", (1, 10, 30, 91)),
    ]:
        sql = (f"SELECT m.member_id, lifecycle_stage(o.ts, TIMESTAMP '{as_of}', {t[0]}, {t[1]}, {t[2]}, {t[3]}) AS stage "
               f"FROM {mtable} m LEFT JOIN {table} o ON o.member_id = m.member_id GROUP BY m.member_id")
        ours = audience(binary, data, sql, out, tables=[("adv", adv), ("advm", adv_members)])
        theirs = lifecycle_reference(con, mpath, opath, as_of, t)
        compare(f"lifecycle {table} as_of {as_of} thresholds {t}", ours, theirs)

    # Tag index: every (tag, value) bitmap holds exactly the members DuckDB finds.
    tags_sql = f"""
        SELECT tag, value, list(DISTINCT member_id ORDER BY member_id) AS ids FROM (
          SELECT tag, value, member_id FROM read_parquet('{data}/member_tags/*.parquet')
          UNION ALL SELECT 'tier', tier, member_id FROM read_parquet('{members}')
          UNION ALL SELECT 'city', city, member_id FROM read_parquet('{members}'))
        GROUP BY tag, value"""
    reference = {(r["tag"], r["value"]): r["ids"] for r in con.sql(tags_sql).to_arrow_table().to_pylist()}
    index = pq.read_table(data / "tag_bitmaps").to_pylist()
    read_back = {(r["tag"], r["value"]): list(BitMap.deserialize(r["bitmap"])) for r in index}
    bad = [k for k, ids in reference.items() if read_back.get(k) != ids]
    print(f"tag index read by pyroaring: {len(reference)} bitmaps, {len(bad)} mismatches")
    if bad or len(reference) < 100:
        FAILURES.append("tag index")
        print("   ", bad[:5])

    # Segments: bitmap algebra in Audience, semi-joins in DuckDB.
    tag_rows = f"read_parquet('{data}/member_tags/*.parquet')"
    segments = [
        ("gold/black, 0-6m, not churned",
         "bitmap_andnot(bitmap_and((SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'tier' AND value IN ('gold', 'black')),"
         " (SELECT bitmap FROM tag_bitmaps WHERE tag = 'baby_stage' AND value = '0-6m')),"
         " (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'churned'))",
         f"""SELECT count(*) FROM read_parquet('{members}') m WHERE m.tier IN ('gold', 'black')
             AND member_id IN (SELECT member_id FROM {tag_rows} WHERE tag = 'baby_stage' AND value = '0-6m')
             AND member_id NOT IN (SELECT member_id FROM {tag_rows} WHERE tag = 'churned')"""),
        ("5 conditions",
         "bitmap_andnot(bitmap_and(bitmap_and(bitmap_and("
         "(SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'tier' AND value IN ('gold', 'black', 'silver')),"
         " (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))),"
         " (SELECT bitmap FROM tag_bitmaps WHERE tag = 'price_sensitivity' AND value = 'low')),"
         " (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))),"
         " (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'churned'))",
         f"""SELECT count(*) FROM read_parquet('{members}') m WHERE m.tier IN ('gold', 'black', 'silver')
             AND member_id IN (SELECT member_id FROM {tag_rows} WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))
             AND member_id IN (SELECT member_id FROM {tag_rows} WHERE tag = 'price_sensitivity' AND value = 'low')
             AND member_id IN (SELECT member_id FROM {tag_rows} WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))
             AND member_id NOT IN (SELECT member_id FROM {tag_rows} WHERE tag = 'churned')"""),
    ]
    for label, bitmap_expr, reference_sql in segments:
        ours = audience(binary, data, f"SELECT 1 AS member_id, bitmap_cardinality({bitmap_expr}) AS members", out)
        theirs = [{"member_id": 1, "members": con.sql(reference_sql).fetchall()[0][0]}]
        compare(f"segment count {label} ({theirs[0]['members']} members)", ours, theirs)

    # Bitmaps written by pyroaring are read by Audience.
    rnd = random.Random(5)
    sets = [sorted(rnd.sample(range(0, 2**32), 50)), list(range(0, 200_000, 3)), [], [4_294_967_295]]
    written = pa.table({
        "k": pa.array(range(len(sets)), pa.int64()),
        "bm": pa.array([BitMap(s).serialize() for s in sets], pa.binary()),
    })
    pyroaring_file = work / "pyroaring.parquet"
    pq.write_table(written, pyroaring_file)
    ours = audience(binary, data, "SELECT k AS member_id, bitmap_cardinality(bm) AS n, bitmap_to_array(bm) AS ids FROM pr",
                    out, tables=[("pr", pyroaring_file)])
    theirs = [{"member_id": k, "n": len(s), "ids": s} for k, s in enumerate(sets)]
    compare("pyroaring bitmaps read by Audience", ours, theirs)

    if FAILURES:
        print(f"FAILED: {', '.join(FAILURES)}")
        sys.exit(1)
    print("0 mismatches in all")


if __name__ == "__main__":
    main()
