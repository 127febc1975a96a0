-- Q10: the 20 most common paths (4 steps, repeats collapsed) from a member's
-- first product view.
SELECT array_to_string(path, '>') AS path, count(*) AS members
FROM (SELECT member_id, event_path(ts, event, event = 'view', 4) AS path FROM {events} GROUP BY member_id)
WHERE path IS NOT NULL
GROUP BY 1 ORDER BY members DESC, path LIMIT 20
