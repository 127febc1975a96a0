-- Time to convert in the view → cart → order → pay funnel (7-day window):
-- for the members who paid, how long from their first step to payment,
-- bucketed, with the median per bucket and the share of converters.
WITH converted AS (
  SELECT window_funnel_detail(INTERVAL '7 days', '', ts, channel,
                              event = 'view', event = 'cart', event = 'order', event = 'pay') AS d
  FROM events
  WHERE event IN ('view', 'cart', 'order', 'pay')
  GROUP BY member_id
),
seconds AS (
  SELECT date_part('epoch', d.step_ts[4]) - date_part('epoch', d.step_ts[1]) AS s
  FROM converted WHERE d.level = 4
)
SELECT CASE WHEN s < 600 THEN '1: under 10 minutes'
            WHEN s < 3600 THEN '2: 10 minutes to 1 hour'
            WHEN s < 86400 THEN '3: 1 hour to 1 day'
            ELSE '4: 1 to 7 days' END AS time_to_convert,
       count(*) AS members,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(median(s) / 60, 1) AS median_minutes
FROM seconds
GROUP BY 1
ORDER BY 1;
