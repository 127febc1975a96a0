-- RFM segments as of a date: members, share of members, revenue and share of revenue
-- per segment, with the average recency, frequency and order value.
SELECT segment,
       count(*) AS members,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS members_pct,
       round(sum(monetary), 2) AS revenue,
       round(100.0 * sum(monetary) / sum(sum(monetary)) OVER (), 1) AS revenue_pct,
       round(avg(recency_days), 1) AS avg_recency_days,
       round(avg(frequency), 2) AS avg_orders,
       round(sum(monetary) / sum(frequency), 2) AS avg_order_value
FROM rfm('orders', TIMESTAMP '2026-12-01 00:00:00')
GROUP BY segment
ORDER BY revenue DESC;
