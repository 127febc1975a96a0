SELECT category, uniqExact(member_id) AS buyers
FROM {events} WHERE event = 'pay' AND category IS NOT NULL
  AND ts >= toDateTime64('2026-11-09 00:00:00', 6) AND ts < toDateTime64('2026-11-16 00:00:00', 6)
GROUP BY category ORDER BY buyers DESC, category LIMIT 100
SETTINGS session_timezone = 'UTC'
