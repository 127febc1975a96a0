-- Each payment time (m payments of a member at that instant) joined to the
-- member's views in the 30 days before it; each view gets m/(views); a
-- payment without one credits NULL.
WITH p AS (SELECT member_id, CAST(ts AS BIGINT) AS us, count(*) AS m FROM {events} WHERE event = 'pay' GROUP BY member_id, us),
v AS (SELECT member_id, CAST(ts AS BIGINT) AS us, channel FROM {events} WHERE event = 'view' AND channel IS NOT NULL),
w AS (SELECT p.member_id, p.us AS pay, p.m, v.channel FROM p JOIN v ON v.member_id = p.member_id
      AND v.us >= p.us - 2592000000000 AND v.us < p.us),
k AS (SELECT member_id, pay, count(*) AS n FROM w GROUP BY member_id, pay)
SELECT channel, sum(credit) AS credit FROM (
  SELECT w.channel, CAST(w.m AS DOUBLE) / k.n AS credit FROM w JOIN k ON w.member_id = k.member_id AND w.pay = k.pay
  UNION ALL
  SELECT NULL, CAST(p.m AS DOUBLE) FROM p LEFT JOIN k ON k.member_id = p.member_id AND k.pay = p.us WHERE k.n IS NULL)
GROUP BY channel ORDER BY channel NULLS LAST
