-- F3: scan floor of Q6: decode orders' ts, channel, amount and member_id.
SELECT count(*) AS row_count, min(ts) AS min_ts, max(ts) AS max_ts, min(channel) AS min_channel,
       max(channel) AS max_channel, min(amount) AS min_amount, max(amount) AS max_amount,
       min(member_id) AS min_member, max(member_id) AS max_member
FROM {orders} WHERE member_id > 0
