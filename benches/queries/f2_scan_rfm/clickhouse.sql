SELECT count(*) AS row_count, min(member_id) AS min_member, max(member_id) AS max_member,
       min(ts) AS min_ts, max(ts) AS max_ts, min(amount) AS min_amount, max(amount) AS max_amount
FROM {orders} WHERE member_id > 0
SETTINGS session_timezone = 'UTC'
