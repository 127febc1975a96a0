-- Q2: retention, cohort = Monday-aligned week of a member's first payment;
-- w1..w4 = members of the cohort who paid again in weeks 1..4 after it.
-- cw is one value per member, so the per-member aggregate groups by member_id
-- alone: it then streams inside each member-range partition, no repartition.
WITH c AS (SELECT member_id, (min(CAST(ts AS BIGINT)) - 345600000000) / 604800000000 AS cw FROM {orders} GROUP BY member_id)
SELECT to_timestamp_seconds(cw * 604800 + 345600) AS cohort,
       sum(r[1]) AS members, sum(r[2]) AS w1, sum(r[3]) AS w2, sum(r[4]) AS w3, sum(r[5]) AS w4 FROM (
  SELECT member_id, min(cw) AS cw, retention(w = 0, w = 1, w = 2, w = 3, w = 4) AS r FROM (
    SELECT o.member_id, c.cw, (CAST(o.ts AS BIGINT) - (c.cw * 604800 + 345600) * 1000000) / 604800000000 AS w
    FROM {orders} o JOIN c ON o.member_id = c.member_id)
  GROUP BY member_id)
GROUP BY cw ORDER BY cw
