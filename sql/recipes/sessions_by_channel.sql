-- Sessions by channel: a member's events cut into sessions at a 30-minute
-- pause (or 4 hours after the session began), then per channel of the
-- session's first event: sessions, members, events per session, and the
-- median and 90th-percentile session length in minutes.
-- session_number streams over the member-range layout (no sort, no shuffle).
WITH numbered AS (
  SELECT member_id, ts, channel,
         session_number(ts, INTERVAL '30 minutes', INTERVAL '4 hours')
           OVER (PARTITION BY member_id ORDER BY ts) AS session
  FROM events
),
sessions AS (
  SELECT member_id, session,
         first_value(channel ORDER BY ts) AS channel,
         count(*) AS events,
         date_part('epoch', max(ts) - min(ts)) / 60.0 AS minutes
  FROM numbered
  GROUP BY member_id, session
)
SELECT channel,
       count(*) AS sessions,
       count(DISTINCT member_id) AS members,
       round(avg(events), 2) AS events_per_session,
       round(median(minutes), 1) AS median_minutes,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes), 1) AS p90_minutes
FROM sessions
GROUP BY channel
ORDER BY sessions DESC;
