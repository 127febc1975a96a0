SELECT level, count() AS members FROM (
  SELECT member_id, windowFunnel(604800000000)(toUInt64(toUnixTimestamp64Micro(ts)),
         event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
GROUP BY level ORDER BY level
