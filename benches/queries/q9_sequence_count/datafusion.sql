-- ClickHouse's backtracking matcher on this pattern compares the event *after*
-- the pay with the pay ("(?t<=3600)" follows "(?2)"), and a pay that ends the
-- member's events passes. So a pay is a match end ("ok") when the next event is
-- at most 1 hour later or there is none, and it is counted when a view lies
-- between it and the previous ok pay. Views sort before pays at equal times.
WITH e AS (SELECT member_id, CAST(ts AS BIGINT) AS us, event = 'pay' AS is_pay FROM {events} WHERE event IN ('view', 'pay')),
w AS (SELECT member_id, us, is_pay,
             is_pay AND coalesce(lead(us) OVER (PARTITION BY member_id ORDER BY us, is_pay) - us <= 3600000000, true) AS ok,
             sum(CASE WHEN is_pay THEN 0 ELSE 1 END) OVER (PARTITION BY member_id ORDER BY us, is_pay ROWS UNBOUNDED PRECEDING) AS views
      FROM e),
m AS (SELECT member_id, ok, views,
             max(CASE WHEN ok THEN views END) OVER (PARTITION BY member_id ORDER BY us, is_pay
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS views_at_last_ok
      FROM w),
n AS (SELECT member_id, sum(CASE WHEN ok AND views > coalesce(views_at_last_ok, 0) THEN 1 ELSE 0 END) AS n FROM m GROUP BY member_id)
SELECT n, count(*) AS members FROM n GROUP BY n ORDER BY n
