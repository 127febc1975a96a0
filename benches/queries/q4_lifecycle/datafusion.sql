WITH o AS (
  SELECT member_id, min(CAST(ts AS BIGINT)) AS first, max(CAST(ts AS BIGINT)) AS last,
         nth_value(CAST(ts AS BIGINT), 2 ORDER BY ts DESC) AS prev
  FROM {orders} WHERE ts <= TIMESTAMP '2026-12-01 00:00:00' GROUP BY member_id)
SELECT CASE WHEN last IS NULL THEN 'prospect'
              WHEN 1796083200000000 - first <= 2592000000000 THEN 'new'
              WHEN 1796083200000000 - last <= 2592000000000 THEN
                CASE WHEN prev IS NOT NULL AND last - prev > 7776000000000 THEN 'reactivated' ELSE 'active' END
              WHEN 1796083200000000 - last <= 7776000000000 THEN 'at_risk'
              WHEN 1796083200000000 - last <= 15552000000000 THEN 'dormant'
              ELSE 'churned' END AS stage, count(*) AS members
FROM {members} m LEFT JOIN o ON o.member_id = m.member_id
GROUP BY stage ORDER BY stage
