WITH o AS (
  SELECT member_id, min(epoch_us(ts)) AS first, max(epoch_us(ts)) AS last,
         max(epoch_us(ts), 2)[2] AS prev
  FROM {orders} WHERE ts <= TIMESTAMP '2026-12-01 00:00:00' GROUP BY member_id)
SELECT CASE WHEN last IS NULL THEN 'prospect'
              WHEN epoch_us(TIMESTAMP '2026-12-01 00:00:00') - first <= 2592000000000 THEN 'new'
              WHEN epoch_us(TIMESTAMP '2026-12-01 00:00:00') - last <= 2592000000000 THEN
                CASE WHEN prev IS NOT NULL AND last - prev > 7776000000000 THEN 'reactivated' ELSE 'active' END
              WHEN epoch_us(TIMESTAMP '2026-12-01 00:00:00') - last <= 7776000000000 THEN 'at_risk'
              WHEN epoch_us(TIMESTAMP '2026-12-01 00:00:00') - last <= 15552000000000 THEN 'dormant'
              ELSE 'churned' END AS stage, count(*) AS members
FROM {members} m LEFT JOIN o ON o.member_id = m.member_id
GROUP BY stage ORDER BY stage
