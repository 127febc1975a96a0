SELECT m.*, e.ts, e.event, e.channel, e.sku_id, e.category, e.amount, e.store_id, e.campaign_id
FROM {members} m JOIN (
  SELECT * FROM {events} WHERE member_id = 777
  ORDER BY ts DESC, event, channel, sku_id NULLS LAST, category NULLS LAST LIMIT 50) e ON e.member_id = m.member_id
WHERE m.member_id = 777
ORDER BY e.ts DESC, e.event, e.channel, e.sku_id NULLS LAST, e.category NULLS LAST
SETTINGS session_timezone = 'UTC'
