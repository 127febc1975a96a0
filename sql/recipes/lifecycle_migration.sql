-- Migration between lifecycle stages month over month: for every member, the stage
-- at the start of November and at the start of December, counted by (from, to).
SELECT stage_nov_1 AS from_stage, stage_dec_1 AS to_stage, count(*) AS members
FROM (
  SELECT m.member_id,
         lifecycle_stage(o.ts, DATE '2026-11-01') AS stage_nov_1,
         lifecycle_stage(o.ts, DATE '2026-12-01') AS stage_dec_1
  FROM members m LEFT JOIN orders o ON o.member_id = m.member_id
  GROUP BY m.member_id
)
GROUP BY stage_nov_1, stage_dec_1
ORDER BY from_stage, members DESC;
