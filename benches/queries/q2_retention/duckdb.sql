WITH o AS (SELECT member_id, epoch_us(ts) AS us FROM {orders}),
c AS (SELECT member_id, (min(us) - 345600000000) // 604800000000 AS cw FROM o GROUP BY member_id),
w AS (SELECT DISTINCT o.member_id, c.cw, (o.us - (c.cw * 604800 + 345600) * 1000000) // 604800000000 AS w
      FROM o JOIN c ON o.member_id = c.member_id)
SELECT make_timestamp((cw * 604800 + 345600) * 1000000)::DATE AS cohort,
       count(*) FILTER (WHERE w = 0) AS members, count(*) FILTER (WHERE w = 1) AS w1, count(*) FILTER (WHERE w = 2) AS w2,
       count(*) FILTER (WHERE w = 3) AS w3, count(*) FILTER (WHERE w = 4) AS w4
FROM w GROUP BY cw ORDER BY cw
