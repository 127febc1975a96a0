-- Where members go after viewing a product: each member's path from their
-- first product view (repeats collapsed, 4 steps), the 20 most common.
SELECT array_to_string(path, ' → ') AS path, count(*) AS members
FROM (
  SELECT member_id, event_path(ts, event, event = 'view', 4) AS path
  FROM events
  GROUP BY member_id
)
WHERE path IS NOT NULL
GROUP BY path
ORDER BY members DESC, path
LIMIT 20;
