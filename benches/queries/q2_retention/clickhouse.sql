SELECT toDate(toDateTime(cw * 604800 + 345600)) AS cohort,
       sum(r[1]) AS members, sum(r[2]) AS w1, sum(r[3]) AS w2, sum(r[4]) AS w3, sum(r[5]) AS w4 FROM (
  SELECT member_id, cw, retention(w = 0, w = 1, w = 2, w = 3, w = 4) AS r FROM (
    SELECT member_id, cw, intDiv(us - (cw * 604800 + 345600) * 1000000, 604800000000) AS w FROM (
      SELECT member_id, toUnixTimestamp64Micro(ts) AS us,
             intDiv(min(toUnixTimestamp64Micro(ts)) OVER (PARTITION BY member_id) - 345600000000, 604800000000) AS cw
      FROM {orders}))
  GROUP BY member_id, cw)
GROUP BY cw ORDER BY cw
SETTINGS session_timezone = 'UTC'
