-- Lifecycle stage counts as of a date, every member included: members who never
-- bought are prospects (LEFT JOIN gives them a NULL ts, which lifecycle_stage ignores).
-- Thresholds default to 30 / 30 / 90 / 180 days; pass them to change them:
--   lifecycle_stage(o.ts, DATE '2026-12-01', 14, INTERVAL '30 days', 60, 365)
SELECT stage, count(*) AS members, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM (
  SELECT m.member_id, lifecycle_stage(o.ts, DATE '2026-12-01') AS stage
  FROM members m LEFT JOIN orders o ON o.member_id = m.member_id
  GROUP BY m.member_id
)
GROUP BY stage
ORDER BY members DESC;
