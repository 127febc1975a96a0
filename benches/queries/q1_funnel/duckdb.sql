-- Each view chained by ASOF JOIN to the first later cart, order and pay (the
-- earliest next step is optimal for a fixed start); a member's level is the best
-- over its views, 0 when it has funnel events but no view.
WITH e AS (SELECT member_id, ts, event FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay')),
v AS (SELECT member_id, ts FROM e WHERE event = 'view'),
c AS (SELECT member_id, ts FROM e WHERE event = 'cart'),
o AS (SELECT member_id, ts FROM e WHERE event = 'order'),
p AS (SELECT member_id, ts FROM e WHERE event = 'pay'),
vc AS (SELECT v.member_id, v.ts AS t1, c.ts AS t2 FROM v ASOF LEFT JOIN c ON v.member_id = c.member_id AND c.ts >= v.ts),
vco AS (SELECT vc.*, o.ts AS t3 FROM vc ASOF LEFT JOIN o ON vc.member_id = o.member_id AND o.ts >= vc.t2),
vcop AS (SELECT vco.*, p.ts AS t4 FROM vco ASOF LEFT JOIN p ON vco.member_id = p.member_id AND p.ts >= vco.t3),
levels AS (
  SELECT member_id, max(CASE WHEN t4 <= t1 + INTERVAL 7 DAY THEN 4 WHEN t3 <= t1 + INTERVAL 7 DAY THEN 3
                             WHEN t2 <= t1 + INTERVAL 7 DAY THEN 2 ELSE 1 END) AS level
  FROM vcop GROUP BY member_id
  UNION ALL
  SELECT member_id, 0 FROM e GROUP BY member_id HAVING NOT bool_or(event = 'view'))
SELECT level, count(*) AS members FROM levels GROUP BY level ORDER BY level
