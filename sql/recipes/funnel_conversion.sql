-- Step conversion of the view → cart → order → pay funnel inside a 7-day window:
-- members reaching each step, as a share of the first step and of the step before.
-- Pre-filtering to the funnel's events is safe (except with 'strict_order') and fast.
WITH levels AS (
  SELECT member_id,
         window_funnel(INTERVAL '7 days', '', ts,
                       event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM events
  WHERE event IN ('view', 'cart', 'order', 'pay')
  GROUP BY member_id
),
reached AS (
  SELECT s.step, s.name, count(l.member_id) AS members
  FROM (VALUES (1, 'view'), (2, 'cart'), (3, 'order'), (4, 'pay')) AS s(step, name)
  LEFT JOIN levels l ON l.level >= s.step
  GROUP BY s.step, s.name
)
SELECT step, name, members,
       round(100.0 * members / first_value(members) OVER (ORDER BY step), 1) AS pct_of_first,
       round(100.0 * members / lag(members) OVER (ORDER BY step), 1) AS pct_of_previous
FROM reached
ORDER BY step;
