SELECT n, count() AS members FROM (
  SELECT member_id, sequenceCount('(?1).*(?2)(?t<=3600000000)')(toUInt64(toUnixTimestamp64Micro(ts)),
         event = 'view', event = 'pay') AS n
  FROM {events} WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY n ORDER BY n
