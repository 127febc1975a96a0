#!/usr/bin/env bash
# Loads and the member-range layout, measured (release build): the generated
# events of a scale loaded back as 30 "daily" loads (each a slice of the year,
# every member range touched), then Q1 (the 4-step funnel) over the generated
# table (one file per range), the 30 loads (30 files per range, merged per
# range) and the same after `audience compact`, interleaved, RUNS times each;
# prints each load's throughput and the median query times.
#
#   scripts/bench-daily-loads.sh [SCALE] [RUNS]      # default: s 5
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-s}"
runs="${2:-5}"
bin="${AUDIENCE_BIN:-${CARGO_TARGET_DIR:-target}/release/audience}"
[ -x "$bin" ] || cargo build --release --locked
work="${BENCH_DIR:-/tmp/audience-bench-loads}/$scale"
rm -rf "$work"
mkdir -p "$work"

"$bin" gen --scale "$scale" --out "$work/gen" >/dev/null
echo "== 30 daily loads (Parquet through --sql) into $work/daily"
for day in $(seq 0 29); do
  "$bin" load events --data "$work/daily" --batch-id "day-$day" --sql \
    "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '$work/gen/events/';
     SELECT * FROM src WHERE (CAST(to_unixtime(ts) AS BIGINT) / 86400) % 30 = $day" |
    sed -E 's/.* in ([0-9.]+ s): ([0-9.]+M rows\/s)/day '"$day"': \1, \2/'
done
echo "== one CSV export of 1M events, loaded"
"$bin" query --data "$work/gen" --format csv -o "$work/events.csv" \
  "SELECT member_id, ts, event, channel, sku_id, category, amount FROM events LIMIT 1000000" >/dev/null
"$bin" load events "$work/events.csv" --data "$work/csv" | sed -E 's/.* in ([0-9.]+ s): /csv: \1, /'
cp -r "$work/daily" "$work/compacted"
echo "== compaction"
"$bin" compact events --data "$work/compacted"

q1="SELECT level, count(*) AS members FROM (
  SELECT member_id, window_funnel(604800, '', ts, event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM events WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
GROUP BY level ORDER BY level"
for layout in gen daily compacted; do
  "$bin" query --data "$work/$layout" --format csv "$q1" >"$work/$layout.q1"
done
cmp "$work/gen.q1" "$work/daily.q1" && cmp "$work/gen.q1" "$work/compacted.q1"
echo "== Q1 (answers equal on all three), $runs interleaved runs, query seconds"
for run in $(seq 1 "$runs"); do
  for layout in gen daily compacted; do
    t=$("$bin" query --timing --data "$work/$layout" --format csv "$q1" 2>&1 >/dev/null |
      sed -nE 's/.*query ([0-9.]+) s.*/\1/p')
    echo "$layout $t"
  done
done | sort -k1,1 -k2,2n | awk -v runs="$runs" '
  { t[$1] = t[$1] " " $2; n[$1]++; if (n[$1] == int((runs + 1) / 2)) median[$1] = $2 }
  END { for (l in t) printf "%-10s median %s s  (all:%s)\n", l, median[l], t[l] }'
