SELECT toDate(ts) AS day, channel, sum(amount) AS gmv, uniqExact(member_id) AS buyers
FROM {orders} WHERE ts >= toDateTime64('2026-09-02 00:00:00', 6)
GROUP BY day, channel ORDER BY day, channel
SETTINGS session_timezone = 'UTC'
