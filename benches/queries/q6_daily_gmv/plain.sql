-- Q6 for the peers: daily GMV and buyers by channel over the last 90 days.
SELECT CAST(ts AS DATE) AS day, channel, sum(amount) AS gmv, count(DISTINCT member_id) AS buyers
FROM {orders} WHERE ts >= TIMESTAMP '2026-09-02 00:00:00'
GROUP BY CAST(ts AS DATE), channel ORDER BY day, channel
