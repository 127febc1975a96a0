-- A session starts at a member's first event and after every pause of more
-- than 30 minutes (lag); a running sum numbers them.
WITH e AS (
  SELECT member_id, ts,
         CASE WHEN epoch_us(ts) - epoch_us(lag(ts) OVER w) <= 1800000000 THEN 0 ELSE 1 END AS new
  FROM {events} WINDOW w AS (PARTITION BY member_id ORDER BY ts)),
s AS (SELECT member_id, ts, sum(new) OVER (PARTITION BY member_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session FROM e),
g AS (SELECT member_id, session, min(ts) AS start, count(*) AS events FROM s GROUP BY member_id, session)
SELECT CAST(start AS DATE) AS day, count(*) AS sessions, count(DISTINCT member_id) AS members, sum(events) AS events
FROM g GROUP BY day ORDER BY day
