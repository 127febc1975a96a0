"""Oracle test: the second family (paths, sessions, funnel detail,
attribution) against DuckDB.

Each answer computed two ways over the same seeded, adversarial Parquet
table: Audience with its functions, DuckDB with plain SQL (window functions,
a recursive CTE) written from shared/SPEC.md — also the peers' best idiom for
the benchmark. Compared row by row.

Usage: second_family.py AUDIENCE_BINARY WORK_DIR
Prints one line per comparison and exits non-zero on any mismatch.
"""

import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from oracle import FAILURES, audience, compare

MINUTE_US = 60_000_000


def at(micros):
    """A µs timestamp as pyarrow gives one."""
    return datetime(1970, 1, 1) + timedelta(microseconds=micros)


def adversarial_events(path, seed):
    """Events on a one-minute grid, so gaps and session lengths hit their
    bounds exactly and timestamps tie (also with equal events); some rows
    have no ts or no event."""
    rnd = random.Random(seed)
    rows = {"id": [], "member_id": [], "ts": [], "event": [], "channel": []}
    base = 1_793_491_200_000_000  # 2026-11-01
    for member in range(1, 301):
        t = base + rnd.randrange(0, 1440) * MINUTE_US
        for _ in range(rnd.randrange(1, 40)):
            # steps of 0 (a tie), exactly the gap, a minute either side, or long
            t += rnd.choice([0, 0, 10, 29, 30, 31, 30, 60, 59, 61, 600, 1]) * MINUTE_US
            rows["id"].append(len(rows["id"]))
            rows["member_id"].append(member)
            rows["ts"].append(None if rnd.random() < 0.03 else t)
            rows["event"].append(None if rnd.random() < 0.03 else rnd.choice(["view", "cart", "pay", "search"]))
            rows["channel"].append(None if rnd.random() < 0.2 else rnd.choice(["app", "douyin", "tmall", "wecom"]))
    table = pa.table({
        "id": pa.array(rows["id"], pa.int64()),
        "member_id": pa.array(rows["member_id"], pa.int64()),
        "ts": pa.array(rows["ts"], pa.timestamp("us")),
        "event": pa.array(rows["event"], pa.string()),
        "channel": pa.array(rows["channel"], pa.string()),
    })
    pq.write_table(table, path)


def session_reference(events, gap_s, max_length_s):
    """The query of each `(member_id, t)`'s session from SPEC: a recursive
    walk over a member's events in time order (a split depends on the start
    of the session before it)."""
    gap, max_length = gap_s * 1_000_000, (max_length_s or 0) * 1_000_000
    length_rule = f"OR o.t - r.start >= {max_length}" if max_length_s else ""
    return f"""
        WITH RECURSIVE o AS (
          SELECT member_id, epoch_us(ts) AS t,
                 row_number() OVER (PARTITION BY member_id ORDER BY ts) AS i
          FROM read_parquet('{events}') WHERE ts IS NOT NULL),
        r AS (
          SELECT member_id, i, t, t AS start, 1 AS session FROM o WHERE i = 1
          UNION ALL
          SELECT o.member_id, o.i, o.t,
                 CASE WHEN o.t > r.t AND (o.t - r.t > {gap} {length_rule}) THEN o.t ELSE r.start END,
                 r.session + CASE WHEN o.t > r.t AND (o.t - r.t > {gap} {length_rule}) THEN 1 ELSE 0 END
          FROM r JOIN o ON o.member_id = r.member_id AND o.i = r.i + 1)
        SELECT DISTINCT member_id, t, session FROM r"""


def path_reference(events, start_event, max_steps, backward):
    """Each member's path from SPEC with window functions: rows in (ts,
    event) order from the first start (forward) or up to the last one
    (backward), repeats dropped with lag, cut to max_steps."""
    bound = "o.i <= b.last_i" if backward else "o.i >= b.first_i"
    nearest = "DESC" if backward else "ASC"
    return f"""
        WITH o AS (
          SELECT member_id, event, event = '{start_event}' AS s,
                 row_number() OVER (PARTITION BY member_id ORDER BY ts, event) AS i
          FROM read_parquet('{events}') WHERE ts IS NOT NULL AND event IS NOT NULL),
        b AS (SELECT member_id, min(i) FILTER (WHERE s) AS first_i, max(i) FILTER (WHERE s) AS last_i
              FROM o GROUP BY member_id),
        p AS (SELECT o.member_id, o.i, o.event,
                     lag(o.event) OVER (PARTITION BY o.member_id ORDER BY o.i) AS prev
              FROM o JOIN b USING (member_id) WHERE {bound}),
        steps AS (SELECT *, row_number() OVER (PARTITION BY member_id ORDER BY i {nearest}) AS k
                  FROM p WHERE prev IS NULL OR prev <> event)
        SELECT member_id, list(event ORDER BY i) AS path FROM steps WHERE k <= {max_steps}
        GROUP BY member_id"""


def attribution_reference(events, model, lookback_s, half_life_s):
    """Each member's credit per channel from SPEC: every conversion (a pay)
    joined to its touches (a channel, at most lookback before and strictly
    before), the credit computed per model with window functions."""
    lookback, half_life = lookback_s * 1_000_000, half_life_s * 1_000_000
    credit = {
        "first_touch": "CASE WHEN pos = 1 THEN 1.0 ELSE 0.0 END",
        "last_touch": "CASE WHEN pos = k THEN 1.0 ELSE 0.0 END",
        "linear": "1.0 / k",
        "time_decay": f"pow(2, -(latest - t) / {half_life}) / sum(pow(2, -(latest - t) / {half_life})) OVER w",
        "position_based": "CASE WHEN k = 1 THEN 1.0 WHEN k = 2 THEN 0.5 "
                          "WHEN pos = 1 OR pos = k THEN 0.4 ELSE 0.2 / (k - 2) END",
    }[model]
    return f"""
        WITH r AS (SELECT member_id, epoch_us(ts) AS t, channel, event = 'pay' AS conv
                   FROM read_parquet('{events}') WHERE ts IS NOT NULL),
        c AS (SELECT member_id, t AS ct, row_number() OVER () AS cid FROM r WHERE conv),
        w AS (SELECT c.member_id, c.cid, r.t, r.channel
              FROM c JOIN r ON r.member_id = c.member_id AND r.channel IS NOT NULL
                           AND r.t >= c.ct - {lookback} AND r.t < c.ct),
        o AS (SELECT *, row_number() OVER (PARTITION BY cid ORDER BY t, channel) AS pos,
                        count(*) OVER (PARTITION BY cid) AS k, max(t) OVER (PARTITION BY cid) AS latest
              FROM w),
        credited AS (SELECT member_id, channel, {credit} AS credit FROM o WINDOW w AS (PARTITION BY cid)
                     UNION ALL
                     SELECT member_id, NULL, 1.0 FROM c WHERE cid NOT IN (SELECT cid FROM w))
        SELECT member_id, channel, sum(credit) AS credit FROM credited
        GROUP BY member_id, channel HAVING sum(credit) > 0"""


def funnel_detail_reference(events, window_s, pair):
    """Each member's funnel view → cart → pay from SPEC's greedy pass, row by
    row in a recursive CTE: entries in (ts, step, channel) order, a step-1
    entry restarts slot 1, a step-k entry extends slot k−1's chain (copied,
    its own entry appended) inside the window unless an exclusion row
    ('search') lies strictly between the chain's step i and now (`pair` i-j
    with j = k); the chain reported is the one that first reached the level."""
    window = window_s * 1_000_000
    i, j = pair or (0, 0)

    def crosses(k, chain):
        return f"(o.px IS NOT NULL AND o.px > r.{chain}[{i}].t)" if j == k else "false"

    ok2 = f"(o.k = 2 AND r.f0 IS NOT NULL AND o.t <= r.f0 + {window} AND NOT {crosses(2, 'c0')})"
    ok3 = f"(o.k = 3 AND r.f1 IS NOT NULL AND o.t <= r.f1 + {window} AND NOT {crosses(3, 'c1')})"
    entry = "[{'t': o.t, 'ch': o.ch}]"
    chain = "STRUCT(t BIGINT, ch VARCHAR)[]"
    return f"""
        WITH RECURSIVE u AS (
          SELECT member_id, epoch_us(ts) AS t, event, channel
          FROM read_parquet('{events}') WHERE ts IS NOT NULL AND event IS NOT NULL),
        e AS (
          SELECT u.member_id, u.t, CASE u.event WHEN 'view' THEN 1 WHEN 'cart' THEN 2 ELSE 3 END AS k,
                 u.channel AS ch,
                 (SELECT max(x.t) FROM u x WHERE x.member_id = u.member_id AND x.event = 'search'
                  AND x.t < u.t) AS px
          FROM u WHERE u.event IN ('view', 'cart', 'pay')),
        o AS (SELECT *, row_number() OVER (PARTITION BY member_id ORDER BY t, k, ch NULLS FIRST) AS i FROM e),
        r AS (
          SELECT DISTINCT member_id, 0::BIGINT AS i, NULL::BIGINT AS f0, []::{chain} AS c0,
                 NULL::BIGINT AS f1, []::{chain} AS c1, 0 AS lvl, []::{chain} AS best
          FROM o
          UNION ALL
          SELECT r.member_id, o.i,
                 CASE WHEN o.k = 1 THEN o.t ELSE r.f0 END,
                 CASE WHEN o.k = 1 THEN {entry} ELSE r.c0 END,
                 CASE WHEN {ok2} THEN r.f0 ELSE r.f1 END,
                 CASE WHEN {ok2} THEN list_concat(r.c0, {entry}) ELSE r.c1 END,
                 CASE WHEN o.k = 1 AND r.lvl < 1 THEN 1 WHEN {ok2} AND r.lvl < 2 THEN 2
                      WHEN {ok3} AND r.lvl < 3 THEN 3 ELSE r.lvl END,
                 CASE WHEN o.k = 1 AND r.lvl < 1 THEN {entry}
                      WHEN {ok2} AND r.lvl < 2 THEN list_concat(r.c0, {entry})
                      WHEN {ok3} AND r.lvl < 3 THEN list_concat(r.c1, {entry}) ELSE r.best END
          FROM r JOIN o ON o.member_id = r.member_id AND o.i = r.i + 1)
        SELECT u.member_id, coalesce(last.lvl, 0), coalesce(last.best, [])
        FROM (SELECT DISTINCT member_id FROM u) u
        LEFT JOIN (SELECT member_id, arg_max(lvl, i) AS lvl, arg_max(best, i) AS best
                   FROM r GROUP BY member_id) last USING (member_id)"""


def main():
    binary, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    (data / "ev").mkdir(parents=True, exist_ok=True)
    events = data / "ev" / "part-0.parquet"
    adversarial_events(events, 20261129)
    out = work / "out.parquet"
    con = duckdb.connect()
    ids = con.sql(f"SELECT id, member_id, epoch_us(ts) AS t FROM read_parquet('{events}')").fetchall()

    for gap_s, max_length_s in [(1800, None), (1800, 3600), (60, 600), (86400, 7200)]:
        args = f"ts, {gap_s}" + (f", {max_length_s}" if max_length_s else "")
        label = f"session_number({args})"
        ours = audience(binary, data, f"""
            SELECT id AS member_id,
                   session_number({args}) OVER (PARTITION BY member_id ORDER BY ts) AS session
            FROM ev""", out)
        reference = session_reference(events, gap_s, max_length_s)
        by_time = {(m, t): s for m, t, s in con.sql(reference).fetchall()}
        theirs = [{"member_id": i, "session": by_time.get((m, t))} for i, m, t in ids]
        compare(label, ours, theirs)

        # the aggregate: each session's start, end and events
        ours = audience(binary, data, f"""
            SELECT member_id, sessions({args}) AS s FROM ev GROUP BY member_id""", out)
        rows = con.sql(f"""
            WITH reference AS ({reference})
            SELECT e.member_id, r.session, min(r.t), max(r.t), count(*)
            FROM (SELECT member_id, epoch_us(ts) AS t FROM read_parquet('{events}') WHERE ts IS NOT NULL) e
            JOIN reference r ON r.member_id = e.member_id AND r.t = e.t
            GROUP BY e.member_id, r.session ORDER BY e.member_id, r.session""").fetchall()
        per_member = {}
        for m, _, start, end, n in rows:
            per_member.setdefault(m, []).append({"start": at(start), "end": at(end), "events": n})
        theirs = [{"member_id": m, "s": per_member.get(m, [])} for m in sorted({m for _, m, _ in ids})]
        compare(f"sessions({args})", ours, theirs)

    members = sorted({m for _, m, _ in ids})
    for start_event, max_steps, direction in [("view", 5, "forward"), ("pay", 3, "backward"),
                                              ("search", 1, "forward"), ("cart", 32, "backward")]:
        call = f"event_path(ts, event, event = '{start_event}', {max_steps}, '{direction}')"
        ours = audience(binary, data, f"SELECT member_id, {call} AS path FROM ev GROUP BY member_id", out)
        paths = dict(con.sql(path_reference(events, start_event, max_steps, direction == "backward")).fetchall())
        theirs = [{"member_id": m, "path": paths.get(m)} for m in members]
        compare(call, ours, theirs)

    for model, lookback_s, half_life_s in [("first_touch", 3600, 600), ("last_touch", 86400 * 30, 600),
                                           ("linear", 3600, 600), ("time_decay", 7200, 600),
                                           ("position_based", 1800, 600)]:
        call = f"attribution('{model}', ts, channel, event = 'pay', {lookback_s}, {half_life_s})"
        ours = audience(binary, data, f"SELECT member_id, {call} AS a FROM ev GROUP BY member_id", out)
        ours = [{"member_id": r["member_id"], "a": [(x["touch"], round(x["credit"], 9)) for x in r["a"]]}
                for r in ours]
        credited = {}
        for m, channel, credit in con.sql(attribution_reference(events, model, lookback_s, half_life_s)).fetchall():
            credited.setdefault(m, []).append((channel, round(credit, 9)))
        theirs = [{"member_id": m, "a": sorted(credited.get(m, []), key=lambda x: (x[0] is None, x[0] or ""))}
                  for m in members]
        compare(call, ours, theirs)

    for window_s, pair in [(3600, None), (600, None), (0, None), (86400, None),
                           (3600, (1, 3)), (1800, (2, 3)), (86400, (1, 2))]:
        steps = "event = 'view', event = 'cart', event = 'pay'"
        if pair:
            call = (f"window_funnel_detail_exclude({window_s}, '', '{pair[0]}-{pair[1]}', ts, channel, "
                    f"{steps}, event = 'search')")
        else:
            call = f"window_funnel_detail({window_s}, '', ts, channel, {steps})"
        ours = audience(binary, data, f"SELECT member_id, {call} AS d FROM ev GROUP BY member_id", out)
        ours = [{"member_id": r["member_id"], "d": r["d"] and (r["d"]["level"], r["d"]["step_ts"], r["d"]["step_prop"])}
                for r in ours]
        detail = {m: (level, [at(c["t"]) for c in best], [c["ch"] for c in best])
                  for m, level, best in con.sql(funnel_detail_reference(events, window_s, pair)).fetchall()}
        theirs = [{"member_id": m, "d": detail.get(m)} for m in members]
        compare(call, ours, theirs)

    if FAILURES:
        print(f"FAILED: {', '.join(FAILURES)}")
        sys.exit(1)
    print("0 mismatches in all")


if __name__ == "__main__":
    main()
