-- Q5: audience segment: gold/black members in 10 cities with a cart and no pay
-- in the last 30 days (one streaming pass over events, grouped by member).
SELECT count(*) AS members FROM {members} m JOIN (
  SELECT member_id FROM {events}
  WHERE event IN ('cart', 'pay') AND ts >= TIMESTAMP '2026-11-01 00:00:00'
  GROUP BY member_id HAVING bool_or(event = 'cart') AND NOT bool_or(event = 'pay')) e ON e.member_id = m.member_id
WHERE m.tier IN ('gold', 'black') AND m.city IN ('Shanghai', 'Beijing', 'Guangzhou', 'Shenzhen', 'Chengdu', 'Hangzhou', 'Chongqing', 'Wuhan', 'Xi''an', 'Suzhou')
