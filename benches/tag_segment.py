"""Tag segment benchmark: a 5-condition marketer segment counted by bitmap algebra
over the tag index (`audience index tags`) against the same count by plain SQL
over `member_tags`/`members` on Audience, DuckDB and ClickHouse (chDB); answers
checked equal first (see harness.py). Audience's time is the query's own
(`--timing`, after startup); the OS file cache is warm after the first run.

Usage (from the repo root, after `cargo build --release`, `audience gen` and
`audience index tags --data DIR`):
  .venv/bin/python benches/tag_segment.py --audience target/release/audience --data data/l --runs 5
"""

import sys

import harness

BITMAPS = """
SELECT bitmap_cardinality(bitmap_andnot(bitmap_and(bitmap_and(bitmap_and(
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'tier' AND value IN ('gold', 'black')),
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))),
  (SELECT bitmap FROM tag_bitmaps WHERE tag = 'price_sensitivity' AND value = 'low')),
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))),
  (SELECT bitmap FROM tag_bitmaps WHERE tag = 'churned'))) AS members"""


def plain(tags, members):
    return f"""
SELECT count(*) AS members FROM {members} m
WHERE m.tier IN ('gold', 'black')
  AND m.member_id IN (SELECT member_id FROM {tags} WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))
  AND m.member_id IN (SELECT member_id FROM {tags} WHERE tag = 'price_sensitivity' AND value = 'low')
  AND m.member_id IN (SELECT member_id FROM {tags} WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))
  AND m.member_id NOT IN (SELECT member_id FROM {tags} WHERE tag = 'churned')"""


QUERIES = {
    "tag_segment_5_conditions": {
        "audience": BITMAPS,
        "audience_sql": plain("member_tags", "members"),
        "duckdb": plain("read_parquet('{member_tags}')", "read_parquet('{members}')"),
        "clickhouse": plain("file('{member_tags}', Parquet)", "file('{members}', Parquet)"),
    },
}

if __name__ == "__main__":
    sys.exit(harness.run("tag-segment", QUERIES, __doc__))
