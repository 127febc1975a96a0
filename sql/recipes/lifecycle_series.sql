-- Lifecycle series (PostHog's lifecycle chart), one row per (week, status):
--   new          active this week, and this is the week they registered;
--   returning    active this week and the week before;
--   resurrecting active this week, not the week before, and not new;
--   dormant      active the week before, not this week (a negative count).
-- Activity here is paying (orders); use events with another filter for other activities.
-- For days or months, change 'week' and INTERVAL '7 days' to 'day' / '1 day' or 'month' / '1 month'.
WITH params AS (
  SELECT TIMESTAMP '2026-09-07 00:00:00' AS range_start,  -- a Monday: weeks start on Monday
         TIMESTAMP '2026-11-30 00:00:00' AS range_end
),
active AS (  -- one row per member and active week, from one week before the range
  SELECT DISTINCT o.member_id, date_trunc('week', o.ts) AS period
  FROM orders o, params p
  WHERE o.ts >= p.range_start - INTERVAL '7 days' AND o.ts < p.range_end
),
marked AS (
  SELECT a.member_id, a.period, date_trunc('week', m.register_ts) AS registered,
         lag(a.period) OVER (PARTITION BY a.member_id ORDER BY a.period) AS previous,
         lead(a.period) OVER (PARTITION BY a.member_id ORDER BY a.period) AS next
  FROM active a JOIN members m ON m.member_id = a.member_id
),
statuses AS (
  SELECT period,
         CASE WHEN period = registered THEN 'new'
              WHEN previous = period - INTERVAL '7 days' THEN 'returning'
              ELSE 'resurrecting' END AS status,
         1 AS members
  FROM marked
  UNION ALL
  SELECT period + INTERVAL '7 days', 'dormant', -1
  FROM marked
  WHERE next IS NULL OR next <> period + INTERVAL '7 days'
)
SELECT s.period AS week, s.status, sum(s.members) AS members
FROM statuses s, params p
WHERE s.period >= p.range_start AND s.period < p.range_end
GROUP BY s.period, s.status
ORDER BY week, status;
