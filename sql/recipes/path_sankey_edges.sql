-- The Sankey edge table of the paths after a product view: for each step
-- of each member's path (from the first view, 5 steps), the edge from that
-- step's event to the next, and how many members took it.
WITH paths AS (
  SELECT member_id, event_path(ts, event, event = 'view', 5) AS path
  FROM events
  GROUP BY member_id
),
steps AS (
  SELECT member_id, path, unnest(range(1, array_length(path))) AS step
  FROM paths
  WHERE array_length(path) >= 2
)
SELECT step, path[step] AS source, path[step + 1] AS target, count(*) AS members
FROM steps
GROUP BY step, source, target
ORDER BY step, members DESC, source, target;
