-- Per member, the sorted times as an array, split where a pause of more than
-- 30 minutes begins a session (arraySplit): each piece is a session.
SELECT toDate(s[1]) AS day, count() AS sessions, uniqExact(member_id) AS members, sum(length(s)) AS events
FROM (
  SELECT member_id, arraySort(groupArray(ts)) AS t,
         arrayMap((x, i) -> i = 1 OR toUnixTimestamp64Micro(x) - toUnixTimestamp64Micro(t[i - 1]) > 1800000000,
                  t, arrayEnumerate(t)) AS new
  FROM {events} GROUP BY member_id
)
ARRAY JOIN arraySplit((x, b) -> b, t, new) AS s
GROUP BY day ORDER BY day
SETTINGS session_timezone = 'UTC'
