-- Path checks per member with sequence_match / sequence_count, summed into shares:
-- paid within an hour of a cart, searched then viewed then carted, came back to
-- buy after a refund, and how often a member views then pays within a day.
SELECT count(*) AS members,
       round(100.0 * avg(CASE WHEN cart_then_pay_1h THEN 1.0 ELSE 0 END), 1) AS cart_then_pay_within_1h_pct,
       round(100.0 * avg(CASE WHEN search_view_cart THEN 1.0 ELSE 0 END), 1) AS search_view_cart_pct,
       round(100.0 * avg(CASE WHEN refund_then_pay THEN 1.0 ELSE 0 END), 1) AS bought_again_after_refund_pct,
       round(avg(view_pay_1d), 2) AS view_then_pay_within_1d_per_member
FROM (
  SELECT member_id,
         sequence_match('(?1).*(?2)(?t<=3600)', ts, event = 'cart', event = 'pay') AS cart_then_pay_1h,
         sequence_match('(?1)(?2).*(?3)', ts, event = 'search', event = 'view', event = 'cart') AS search_view_cart,
         sequence_match('(?1).*(?2)', ts, event = 'refund', event = 'pay') AS refund_then_pay,
         sequence_count('(?1).*(?2)(?t<=86400)', ts, event = 'view', event = 'pay') AS view_pay_1d
  FROM events
  WHERE event IN ('search', 'view', 'cart', 'pay', 'refund')
  GROUP BY member_id
);
