-- Each payment time (m payments of a member at that instant) joined to the
-- member's views in the 30 days before it; each view gets m/(views); a
-- payment without one credits NULL.
WITH p AS (SELECT member_id, toUnixTimestamp64Micro(ts) AS us, count() AS m FROM {events} WHERE event = 'pay' GROUP BY member_id, us),
v AS (SELECT member_id, toUnixTimestamp64Micro(ts) AS us, toString(channel) AS channel FROM {events} WHERE event = 'view' AND channel IS NOT NULL),
w AS (SELECT p.member_id AS member_id, p.us AS pay, p.m AS m, v.channel AS channel FROM p INNER JOIN v ON v.member_id = p.member_id
      WHERE v.us >= p.us - 2592000000000 AND v.us < p.us),
k AS (SELECT member_id, pay, count() AS n FROM w GROUP BY member_id, pay)
SELECT channel, sum(credit) AS credit FROM (
  SELECT toNullable(w.channel) AS channel, w.m / k.n AS credit FROM w INNER JOIN k ON w.member_id = k.member_id AND w.pay = k.pay
  UNION ALL
  SELECT CAST(NULL AS Nullable(String)), toFloat64(p.m) FROM p LEFT ANTI JOIN k ON k.member_id = p.member_id AND k.pay = p.us)
GROUP BY channel ORDER BY channel NULLS LAST
SETTINGS session_timezone = 'UTC'
