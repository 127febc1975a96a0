-- T1: the same segment as plain SQL over member_tags and members.
SELECT count(*) AS members FROM {members} m
WHERE m.tier IN ('gold', 'black')
  AND m.member_id IN (SELECT member_id FROM {member_tags} WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))
  AND m.member_id IN (SELECT member_id FROM {member_tags} WHERE tag = 'price_sensitivity' AND value = 'low')
  AND m.member_id IN (SELECT member_id FROM {member_tags} WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))
  AND m.member_id NOT IN (SELECT member_id FROM {member_tags} WHERE tag = 'churned')
