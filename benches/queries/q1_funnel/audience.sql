-- Q1: 4-step funnel view -> cart -> order -> pay within 7 days, members per step.
SELECT level, count(*) AS members FROM (
  SELECT member_id, window_funnel(604800, '', ts, event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
GROUP BY level ORDER BY level
