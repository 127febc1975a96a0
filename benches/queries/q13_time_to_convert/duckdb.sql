-- Each step's rows ASOF-joined backwards to the latest earlier surviving row
-- of the step before (it carries the latest chain start) and kept within 7
-- days of that start; a member's time to convert is its first surviving pay's.
WITH e AS (SELECT member_id, epoch_us(ts) AS us, event FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay')),
s1 AS MATERIALIZED (SELECT member_id, us, us AS start FROM e WHERE event = 'view'),
s2 AS MATERIALIZED (SELECT c.member_id, c.us, s1.start FROM (SELECT member_id, us FROM e WHERE event = 'cart') c
                    ASOF JOIN s1 ON c.member_id = s1.member_id AND c.us >= s1.us WHERE c.us <= s1.start + 604800000000),
s3 AS MATERIALIZED (SELECT o.member_id, o.us, s2.start FROM (SELECT member_id, us FROM e WHERE event = 'order') o
                    ASOF JOIN s2 ON o.member_id = s2.member_id AND o.us >= s2.us WHERE o.us <= s2.start + 604800000000),
s4 AS (SELECT p.member_id, p.us, s3.start FROM (SELECT member_id, us FROM e WHERE event = 'pay') p
       ASOF JOIN s3 ON p.member_id = s3.member_id AND p.us >= s3.us WHERE p.us <= s3.start + 604800000000)
SELECT hours, count(*) AS members
FROM (SELECT member_id, arg_min(us - start, us) // 3600000000 AS hours FROM s4 GROUP BY member_id)
GROUP BY hours ORDER BY hours
