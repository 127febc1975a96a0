-- Channel attribution of paid orders under all five models: each payment's
-- credit shared among the channels where the member viewed a product in the
-- 30 days before it, summed per channel (each model's column adds up to the
-- payments).
WITH credited AS (
  SELECT attribution('first_touch', ts, touch, paid) AS first_touch,
         attribution('last_touch', ts, touch, paid) AS last_touch,
         attribution('linear', ts, touch, paid) AS linear,
         attribution('time_decay', ts, touch, paid, INTERVAL '30 days', INTERVAL '7 days') AS time_decay,
         attribution('position_based', ts, touch, paid) AS position_based
  FROM (SELECT member_id, ts, event = 'pay' AS paid,
               CASE WHEN event = 'view' THEN channel END AS touch
        FROM events)
  GROUP BY member_id
),
models AS (
  SELECT 'first_touch' AS model, unnest(first_touch) AS a FROM credited
  UNION ALL SELECT 'last_touch', unnest(last_touch) FROM credited
  UNION ALL SELECT 'linear', unnest(linear) FROM credited
  UNION ALL SELECT 'time_decay', unnest(time_decay) FROM credited
  UNION ALL SELECT 'position_based', unnest(position_based) FROM credited
)
SELECT coalesce(CAST(a.touch AS VARCHAR), '(no view)') AS channel,
       round(sum(CASE WHEN model = 'first_touch' THEN a.credit END), 1) AS first_touch,
       round(sum(CASE WHEN model = 'last_touch' THEN a.credit END), 1) AS last_touch,
       round(sum(CASE WHEN model = 'linear' THEN a.credit END), 1) AS linear,
       round(sum(CASE WHEN model = 'time_decay' THEN a.credit END), 1) AS time_decay,
       round(sum(CASE WHEN model = 'position_based' THEN a.credit END), 1) AS position_based
FROM models
GROUP BY channel
ORDER BY linear DESC;
