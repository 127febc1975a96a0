-- Cohort retention matrix: members by the week of their first payment, and the
-- share who paid again in each of the four following weeks.
WITH cohorts AS (
  SELECT member_id, date_trunc('week', min(ts)) AS cohort
  FROM events WHERE event = 'pay' GROUP BY member_id
),
-- One row per member: the cohort is one value per member, so grouping by
-- member_id alone (min(cohort)) lets the aggregate stream in member order.
flags AS (
  SELECT min(c.cohort) AS cohort,
         retention(e.ts < c.cohort + INTERVAL '7 days',
                   e.ts >= c.cohort + INTERVAL '7 days'  AND e.ts < c.cohort + INTERVAL '14 days',
                   e.ts >= c.cohort + INTERVAL '14 days' AND e.ts < c.cohort + INTERVAL '21 days',
                   e.ts >= c.cohort + INTERVAL '21 days' AND e.ts < c.cohort + INTERVAL '28 days',
                   e.ts >= c.cohort + INTERVAL '28 days' AND e.ts < c.cohort + INTERVAL '35 days') AS r
  FROM events e JOIN cohorts c ON e.member_id = c.member_id
  WHERE e.event = 'pay'
  GROUP BY e.member_id
)
SELECT cohort,
       sum(r[1]) AS members,
       round(100.0 * sum(r[2]) / sum(r[1]), 1) AS week_1_pct,
       round(100.0 * sum(r[3]) / sum(r[1]), 1) AS week_2_pct,
       round(100.0 * sum(r[4]) / sum(r[1]), 1) AS week_3_pct,
       round(100.0 * sum(r[5]) / sum(r[1]), 1) AS week_4_pct
FROM flags
GROUP BY cohort
ORDER BY cohort;
