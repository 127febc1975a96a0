-- Per member, events sorted by (ts, event) as an array; from the first view,
-- a repeat of the event before it is dropped, and the first 4 steps kept.
SELECT arrayStringConcat(p, '>') AS path, count() AS members
FROM (
  SELECT member_id,
         arrayMap(x -> x.2, arraySort(groupArray((ts, toString(event))))) AS ev,
         indexOf(ev, 'view') AS start,
         arraySlice(ev, start) AS tail,
         arraySlice(arrayFilter((x, i) -> i = 1 OR x != tail[i - 1], tail, arrayEnumerate(tail)), 1, 4) AS p
  FROM {events} GROUP BY member_id)
WHERE start > 0
GROUP BY path ORDER BY members DESC, path LIMIT 20
SETTINGS session_timezone = 'UTC'
