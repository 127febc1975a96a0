"""Customer-value benchmark: RFM segment sizes and lifecycle stage counts on
Audience (`rfm`, `lifecycle_stage`) against the best plain-SQL formulation on
DuckDB and ClickHouse (chDB), same Parquet files, one run, interleaved, answers
checked equal first (see harness.py).

Usage (from the repo root, after `cargo build --release` and `audience gen --scale m`):
  .venv/bin/python benches/customer_value.py --audience target/release/audience --data data/m --runs 5
"""

import sys

import harness

AS_OF = "2026-12-01 00:00:00"
DAY_US = 86_400_000_000

GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    3: ["About To Sleep", "About To Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


def segment_case():
    """rfm_segment as a CASE over r and fm = (f + m + 1) // 2."""
    whens = " ".join(
        f"WHEN r = {r} AND fm = {fm} THEN '{seg.replace(chr(39), chr(39) * 2)}'"
        for r, row in GRID.items()
        for fm, seg in enumerate(row, start=1)
    )
    return f"CASE {whens} END"


RFM_AUDIENCE = f"""
SELECT segment, count(*) AS members FROM rfm('orders', TIMESTAMP '{AS_OF}')
GROUP BY segment ORDER BY segment"""

RFM_DUCKDB = f"""
WITH base AS (
  SELECT member_id, (epoch_us(TIMESTAMP '{AS_OF}') - epoch_us(max(ts))) // {DAY_US} AS recency_days,
         count(*) AS frequency, sum(amount) AS monetary
  FROM read_parquet('{{orders}}') WHERE ts <= TIMESTAMP '{AS_OF}' GROUP BY member_id),
scored AS (
  SELECT ntile(5) OVER (ORDER BY recency_days DESC, member_id) AS r,
         (ntile(5) OVER (ORDER BY frequency, member_id) + ntile(5) OVER (ORDER BY monetary NULLS FIRST, member_id) + 1) // 2 AS fm
  FROM base)
SELECT {segment_case()} AS segment, count(*) AS members FROM scored GROUP BY segment ORDER BY segment"""

RFM_CLICKHOUSE = f"""
WITH base AS (
  SELECT member_id, intDiv(toUnixTimestamp64Micro(toDateTime64('{AS_OF}', 6)) - toUnixTimestamp64Micro(max(ts)), {DAY_US}) AS recency_days,
         count() AS frequency, sum(amount) AS monetary
  FROM file('{{orders}}', Parquet) WHERE ts <= toDateTime64('{AS_OF}', 6) GROUP BY member_id),
scored AS (
  SELECT ntile(5) OVER (ORDER BY recency_days DESC, member_id) AS r,
         intDiv(ntile(5) OVER (ORDER BY frequency, member_id) + ntile(5) OVER (ORDER BY monetary NULLS FIRST, member_id) + 1, 2) AS fm
  FROM base)
SELECT {segment_case()} AS segment, count() AS members FROM scored GROUP BY segment ORDER BY segment
SETTINGS session_timezone = 'UTC'"""

LIFECYCLE_AUDIENCE = f"""
SELECT stage, count(*) AS members FROM (
  SELECT m.member_id, lifecycle_stage(o.ts, TIMESTAMP '{AS_OF}') AS stage
  FROM members m LEFT JOIN orders o ON o.member_id = m.member_id GROUP BY m.member_id)
GROUP BY stage ORDER BY stage"""


def lifecycle_case(now):
    return f"""CASE WHEN last IS NULL THEN 'prospect'
              WHEN {now} - first <= {30 * DAY_US} THEN 'new'
              WHEN {now} - last <= {30 * DAY_US} THEN
                CASE WHEN prev IS NOT NULL AND last - prev > {90 * DAY_US} THEN 'reactivated' ELSE 'active' END
              WHEN {now} - last <= {90 * DAY_US} THEN 'at_risk'
              WHEN {now} - last <= {180 * DAY_US} THEN 'dormant'
              ELSE 'churned' END"""


LIFECYCLE_DUCKDB = f"""
WITH o AS (
  SELECT member_id, min(epoch_us(ts)) AS first, max(epoch_us(ts)) AS last,
         max(epoch_us(ts), 2)[2] AS prev
  FROM read_parquet('{{orders}}') WHERE ts <= TIMESTAMP '{AS_OF}' GROUP BY member_id)
SELECT {lifecycle_case(f"epoch_us(TIMESTAMP '{AS_OF}')")} AS stage, count(*) AS members
FROM read_parquet('{{members}}') m LEFT JOIN o ON o.member_id = m.member_id
GROUP BY stage ORDER BY stage"""

LIFECYCLE_CLICKHOUSE = f"""
WITH o AS (
  SELECT member_id, min(toUnixTimestamp64Micro(ts)) AS first, max(toUnixTimestamp64Micro(ts)) AS last,
         groupArraySorted(2)(-toUnixTimestamp64Micro(ts)) AS top2, if(length(top2) = 2, -top2[2], NULL) AS prev
  FROM file('{{orders}}', Parquet) WHERE ts <= toDateTime64('{AS_OF}', 6) GROUP BY member_id)
SELECT {lifecycle_case(f"toUnixTimestamp64Micro(toDateTime64('{AS_OF}', 6))")} AS stage, count() AS members
FROM file('{{members}}', Parquet) m LEFT JOIN o ON o.member_id = m.member_id
GROUP BY stage ORDER BY stage
SETTINGS session_timezone = 'UTC', join_use_nulls = 1"""

QUERIES = {
    "rfm_segment_sizes": {"audience": RFM_AUDIENCE, "duckdb": RFM_DUCKDB, "clickhouse": RFM_CLICKHOUSE},
    "lifecycle_stage_counts": {"audience": LIFECYCLE_AUDIENCE, "duckdb": LIFECYCLE_DUCKDB, "clickhouse": LIFECYCLE_CLICKHOUSE},
}

if __name__ == "__main__":
    sys.exit(harness.run("customer-value", QUERIES, __doc__))
