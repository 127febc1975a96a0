WITH base AS (
  SELECT member_id, (epoch_us(TIMESTAMP '2026-12-01 00:00:00') - epoch_us(max(ts))) // 86400000000 AS recency_days,
         count(*) AS frequency, sum(amount) AS monetary
  FROM {orders} WHERE ts <= TIMESTAMP '2026-12-01 00:00:00' GROUP BY member_id),
scored AS (
  SELECT ntile(5) OVER (ORDER BY recency_days DESC, member_id) AS r,
         (ntile(5) OVER (ORDER BY frequency, member_id) + ntile(5) OVER (ORDER BY monetary NULLS FIRST, member_id) + 1) // 2 AS fm
  FROM base)
SELECT CASE WHEN r = 5 AND fm = 1 THEN 'New Customers' WHEN r = 5 AND fm = 2 THEN 'Potential Loyalists' WHEN r = 5 AND fm = 3 THEN 'Potential Loyalists' WHEN r = 5 AND fm = 4 THEN 'Champions' WHEN r = 5 AND fm = 5 THEN 'Champions' WHEN r = 4 AND fm = 1 THEN 'Promising' WHEN r = 4 AND fm = 2 THEN 'Potential Loyalists' WHEN r = 4 AND fm = 3 THEN 'Potential Loyalists' WHEN r = 4 AND fm = 4 THEN 'Loyal Customers' WHEN r = 4 AND fm = 5 THEN 'Loyal Customers' WHEN r = 3 AND fm = 1 THEN 'About To Sleep' WHEN r = 3 AND fm = 2 THEN 'About To Sleep' WHEN r = 3 AND fm = 3 THEN 'Need Attention' WHEN r = 3 AND fm = 4 THEN 'Loyal Customers' WHEN r = 3 AND fm = 5 THEN 'Loyal Customers' WHEN r = 2 AND fm = 1 THEN 'Hibernating' WHEN r = 2 AND fm = 2 THEN 'Hibernating' WHEN r = 2 AND fm = 3 THEN 'At Risk' WHEN r = 2 AND fm = 4 THEN 'At Risk' WHEN r = 2 AND fm = 5 THEN 'Can''t Lose Them' WHEN r = 1 AND fm = 1 THEN 'Lost' WHEN r = 1 AND fm = 2 THEN 'Lost' WHEN r = 1 AND fm = 3 THEN 'At Risk' WHEN r = 1 AND fm = 4 THEN 'At Risk' WHEN r = 1 AND fm = 5 THEN 'Can''t Lose Them' END AS segment, count(*) AS members FROM scored GROUP BY segment ORDER BY segment
