-- Q11: sessions (a new one after a pause of more than 30 minutes) per day of
-- their start: sessions, members (a roaring bitmap of member ids, exact),
-- events.
SELECT CAST(s['start'] AS DATE) AS day, count(*) AS sessions,
       bitmap_cardinality(bitmap_agg(member_id)) AS members, sum(s['events']) AS events
FROM (SELECT member_id, unnest(sessions(ts, 1800)) AS s FROM {events} GROUP BY member_id)
GROUP BY day ORDER BY day
