SELECT count(*) AS members FROM {members} m
WHERE m.tier IN ('gold', 'black') AND m.city IN ('Shanghai', 'Beijing', 'Guangzhou', 'Shenzhen', 'Chengdu', 'Hangzhou', 'Chongqing', 'Wuhan', 'Xi''an', 'Suzhou')
  AND m.member_id IN (SELECT member_id FROM {events} WHERE event = 'cart' AND ts >= TIMESTAMP '2026-11-01 00:00:00')
  AND m.member_id NOT IN (SELECT member_id FROM {events} WHERE event = 'pay' AND ts >= TIMESTAMP '2026-11-01 00:00:00')
