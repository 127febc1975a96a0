SELECT count() AS members FROM {members} m
WHERE m.tier IN ('gold', 'black') AND m.city IN ('Shanghai', 'Beijing', 'Guangzhou', 'Shenzhen', 'Chengdu', 'Hangzhou', 'Chongqing', 'Wuhan', 'Xi''an', 'Suzhou')
  AND m.member_id IN (SELECT member_id FROM {events} WHERE event = 'cart' AND ts >= toDateTime64('2026-11-01 00:00:00', 6))
  AND m.member_id NOT IN (SELECT member_id FROM {events} WHERE event = 'pay' AND ts >= toDateTime64('2026-11-01 00:00:00', 6))
SETTINGS session_timezone = 'UTC'
