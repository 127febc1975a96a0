"""Behavioral aggregates benchmark: Audience against ClickHouse (chDB) on the same
Parquet files, in one run, interleaved, answers checked equal first (see harness.py).

Usage (from the repo root, after `cargo build --release` and `audience gen --scale m`):
  .venv/bin/python benches/behavioral.py --audience target/release/audience --data data/m --runs 5
"""

import sys

import harness

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
    "funnel_4_steps_7d": {"audience": FUNNEL_AUDIENCE, "clickhouse": FUNNEL_CLICKHOUSE},
    "retention_weekly_cohorts": {"audience": RETENTION_AUDIENCE, "clickhouse": RETENTION_CLICKHOUSE},
    "sequence_count_view_pay_1h": {"audience": SEQUENCE_AUDIENCE, "clickhouse": SEQUENCE_CLICKHOUSE},
}


if __name__ == "__main__":
    sys.exit(harness.run("behavioral", QUERIES, __doc__))
