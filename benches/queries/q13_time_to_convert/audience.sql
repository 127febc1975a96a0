-- Q13: time to convert in the view -> cart -> order -> pay funnel (7 days):
-- members who paid, by whole hours from the first step to payment.
SELECT (CAST(d.step_ts[4] AS BIGINT) - CAST(d.step_ts[1] AS BIGINT)) / 3600000000 AS hours,
       count(*) AS members
FROM (SELECT window_funnel_detail(604800, '', ts, event, event = 'view', event = 'cart',
                                  event = 'order', event = 'pay') AS d
      FROM {events} WHERE event IN ('view', 'cart', 'order', 'pay') GROUP BY member_id)
WHERE d.level = 4
GROUP BY hours ORDER BY hours
