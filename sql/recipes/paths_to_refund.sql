-- What leads to a refund: each refunding member's last 4 events up to and
-- including their last refund (repeats collapsed), the most common first.
SELECT array_to_string(path, ' → ') AS path, count(*) AS members
FROM (
  SELECT member_id, event_path(ts, event, event = 'refund', 4, 'backward') AS path
  FROM events
  GROUP BY member_id
)
WHERE path IS NOT NULL
GROUP BY path
ORDER BY members DESC, path
LIMIT 20;
