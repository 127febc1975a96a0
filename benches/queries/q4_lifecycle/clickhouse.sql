WITH o AS (
  SELECT member_id, min(toUnixTimestamp64Micro(ts)) AS first, max(toUnixTimestamp64Micro(ts)) AS last,
         groupArraySorted(2)(-toUnixTimestamp64Micro(ts)) AS top2, if(length(top2) = 2, -top2[2], NULL) AS prev
  FROM {orders} WHERE ts <= toDateTime64('2026-12-01 00:00:00', 6) GROUP BY member_id)
SELECT CASE WHEN last IS NULL THEN 'prospect'
              WHEN toUnixTimestamp64Micro(toDateTime64('2026-12-01 00:00:00', 6)) - first <= 2592000000000 THEN 'new'
              WHEN toUnixTimestamp64Micro(toDateTime64('2026-12-01 00:00:00', 6)) - last <= 2592000000000 THEN
                CASE WHEN prev IS NOT NULL AND last - prev > 7776000000000 THEN 'reactivated' ELSE 'active' END
              WHEN toUnixTimestamp64Micro(toDateTime64('2026-12-01 00:00:00', 6)) - last <= 7776000000000 THEN 'at_risk'
              WHEN toUnixTimestamp64Micro(toDateTime64('2026-12-01 00:00:00', 6)) - last <= 15552000000000 THEN 'dormant'
              ELSE 'churned' END AS stage, count() AS members
FROM {members} m LEFT JOIN o ON o.member_id = m.member_id
GROUP BY stage ORDER BY stage
SETTINGS session_timezone = 'UTC', join_use_nulls = 1
