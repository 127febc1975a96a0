-- Q12: linear channel attribution of payments: each payment's credit shared
-- equally among the channels of the member's views in the 30 days before it.
SELECT a.touch AS channel, sum(a.credit) AS credit
FROM (SELECT unnest(attribution('linear', ts, CASE WHEN event = 'view' THEN channel END, event = 'pay', 2592000)) AS a
      FROM {events} WHERE event IN ('view', 'pay') GROUP BY member_id)
GROUP BY channel ORDER BY channel NULLS LAST
