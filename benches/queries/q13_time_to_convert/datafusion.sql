-- No ASOF join: each step carries the latest chain start that reached the step
-- before it (a running max window), kept while within 7 days; a member's time
-- to convert is its first surviving pay's.
WITH e AS (
  SELECT member_id, CAST(ts AS BIGINT) AS us,
         CASE event WHEN 'view' THEN 1 WHEN 'cart' THEN 2 WHEN 'order' THEN 3 ELSE 4 END AS k
  FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay')),
s1 AS (SELECT *, max(CASE WHEN k = 1 THEN us END) OVER w AS start1 FROM e
       WINDOW w AS (PARTITION BY member_id ORDER BY us, k ROWS UNBOUNDED PRECEDING)),
s2 AS (SELECT *, max(CASE WHEN k = 2 AND us - start1 <= 604800000000 THEN start1 END) OVER w AS start2 FROM s1
       WINDOW w AS (PARTITION BY member_id ORDER BY us, k ROWS UNBOUNDED PRECEDING)),
s3 AS (SELECT *, max(CASE WHEN k = 3 AND us - start2 <= 604800000000 THEN start2 END) OVER w AS start3 FROM s2
       WINDOW w AS (PARTITION BY member_id ORDER BY us, k ROWS UNBOUNDED PRECEDING))
SELECT hours, count(*) AS members
FROM (SELECT member_id, first_value(us - start3 ORDER BY us) / 3600000000 AS hours
      FROM s3 WHERE k = 4 AND us - start3 <= 604800000000 GROUP BY member_id)
GROUP BY hours ORDER BY hours
