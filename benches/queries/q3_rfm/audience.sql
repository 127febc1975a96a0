-- Q3: RFM scores (quintiles) and segment sizes as of 2026-12-01.

SELECT segment, count(*) AS members FROM rfm('{orders}', TIMESTAMP '2026-12-01 00:00:00')
GROUP BY segment ORDER BY segment
