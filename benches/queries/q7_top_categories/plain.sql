-- Q7 for the peers: top 100 categories by buyers (members who paid) in the 11.11 week.
SELECT category, count(DISTINCT member_id) AS buyers
FROM {events} WHERE event = 'pay' AND category IS NOT NULL
  AND ts >= TIMESTAMP '2026-11-09 00:00:00' AND ts < TIMESTAMP '2026-11-16 00:00:00'
GROUP BY category ORDER BY buyers DESC, category LIMIT 100
