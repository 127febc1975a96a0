-- The time passed to sequenceCount is 2·µs + (a pay), and the window doubled:
-- ClickHouse sorts a member's events by that time alone, in no set order
-- among equal times, so a view and a pay at one instant would be matched in
-- whichever order its threads read them. Views sort before pays at equal
-- times, as the other engines do; the window test is unchanged (2·Δ − 1 ≤ 2·3600 s
-- holds exactly when Δ ≤ 3600 s).
SELECT n, count() AS members FROM (
  SELECT member_id, sequenceCount('(?1).*(?2)(?t<=7200000000)')(
           toUInt64(toUnixTimestamp64Micro(ts)) * 2 + toUInt64(event = 'pay'),
           event = 'view', event = 'pay') AS n
  FROM {events} WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY n ORDER BY n
