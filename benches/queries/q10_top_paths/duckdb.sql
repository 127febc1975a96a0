-- A member's events in (ts, event) order from the first view; a repeat of the
-- event before it is dropped (lag); the first 4 steps joined into the path.
WITH o AS (
  SELECT member_id, event, row_number() OVER (PARTITION BY member_id ORDER BY ts, event) AS i
  FROM {events}),
b AS (SELECT member_id, min(i) AS first_i FROM o WHERE event = 'view' GROUP BY member_id),
p AS (SELECT o.member_id, o.i, o.event, lag(o.event) OVER (PARTITION BY o.member_id ORDER BY o.i) AS prev
      FROM o JOIN b ON o.member_id = b.member_id AND o.i >= b.first_i),
steps AS (SELECT member_id, i, event, row_number() OVER (PARTITION BY member_id ORDER BY i) AS k
          FROM p WHERE prev IS NULL OR prev <> event),
paths AS (SELECT member_id, string_agg(event, '>' ORDER BY i) AS path FROM steps WHERE k <= 4 GROUP BY member_id)
SELECT path, count(*) AS members FROM paths GROUP BY path ORDER BY members DESC, path LIMIT 20
