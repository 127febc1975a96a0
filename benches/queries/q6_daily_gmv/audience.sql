-- Q6: daily GMV and buyers by channel over the last 90 days; buyers counted as
-- the cardinality of a roaring bitmap of member ids (exact, one bitmap per group).
SELECT CAST(ts AS DATE) AS day, channel, sum(amount) AS gmv, bitmap_cardinality(bitmap_agg(member_id)) AS buyers
FROM {orders} WHERE ts >= TIMESTAMP '2026-09-02 00:00:00'
GROUP BY CAST(ts AS DATE), channel ORDER BY day, channel
