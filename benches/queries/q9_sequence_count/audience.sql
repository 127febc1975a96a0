-- Q9: per member, how many times a view was followed by a pay within 1 hour
-- (non-overlapping), as a histogram.
SELECT n, count(*) AS members FROM (
  SELECT member_id, sequence_count('(?1).*(?2)(?t<=3600)', ts, event = 'view', event = 'pay') AS n
  FROM {events} WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY n ORDER BY n
