SELECT count(*) AS row_count, min(member_id) AS min_member, max(member_id) AS max_member,
       min(ts) AS min_ts, max(ts) AS max_ts, min(event) AS min_event, max(event) AS max_event
FROM {events} WHERE member_id > 0
SETTINGS session_timezone = 'UTC'
