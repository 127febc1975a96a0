-- The view → cart → order → pay funnel (7-day window) broken down by the
-- channel of each member's first step: members reaching each step per channel,
-- and the share of the channel's first step that paid. Each member counts in
-- the channel where the chain that went furthest began.
WITH detail AS (
  SELECT window_funnel_detail(INTERVAL '7 days', '', ts, channel,
                              event = 'view', event = 'cart', event = 'order', event = 'pay') AS d
  FROM events
  WHERE event IN ('view', 'cart', 'order', 'pay')
  GROUP BY member_id
)
SELECT coalesce(d.step_prop[1], '(none)') AS first_channel,
       count(*) FILTER (WHERE d.level >= 1) AS viewed,
       count(*) FILTER (WHERE d.level >= 2) AS carted,
       count(*) FILTER (WHERE d.level >= 3) AS ordered,
       count(*) FILTER (WHERE d.level >= 4) AS paid,
       round(100.0 * count(*) FILTER (WHERE d.level >= 4) / count(*) FILTER (WHERE d.level >= 1), 1) AS pct_paid
FROM detail
WHERE d.level >= 1
GROUP BY 1
ORDER BY viewed DESC;
