-- Q11: sessions (a new one after a pause of more than 30 minutes) per day of
-- their start: sessions, members, events.
SELECT CAST(s['start'] AS DATE) AS day, count(*) AS sessions,
       count(DISTINCT member_id) AS members, sum(s['events']) AS events
FROM (SELECT member_id, unnest(sessions(ts, 1800)) AS s FROM {events} GROUP BY member_id)
GROUP BY day ORDER BY day
