-- F2: scan floor of Q3: decode orders' member_id, ts and amount.
SELECT count(*) AS row_count, min(member_id) AS min_member, max(member_id) AS max_member,
       min(ts) AS min_ts, max(ts) AS max_ts, min(amount) AS min_amount, max(amount) AS max_amount
FROM {orders} WHERE member_id > 0
