-- Q4: lifecycle stage counts of all members as of 2026-12-01.

SELECT stage, count(*) AS members FROM (
  SELECT m.member_id, lifecycle_stage(o.ts, TIMESTAMP '2026-12-01 00:00:00') AS stage
  FROM {members} m LEFT JOIN {orders} o ON o.member_id = m.member_id GROUP BY m.member_id)
GROUP BY stage ORDER BY stage
