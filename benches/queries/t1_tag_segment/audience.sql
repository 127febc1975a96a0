-- T1: a marketer's segment of five tag conditions, counted by bitmap algebra
-- over the tag index (`audience index tags`: one roaring bitmap per tag value).
SELECT bitmap_cardinality(bitmap_andnot(bitmap_and(bitmap_and(bitmap_and(
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'tier' AND value IN ('gold', 'black')),
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'baby_stage' AND value IN ('0-6m', '6-12m'))),
  (SELECT bitmap FROM tag_bitmaps WHERE tag = 'price_sensitivity' AND value = 'low')),
  (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram'))),
  (SELECT bitmap FROM tag_bitmaps WHERE tag = 'churned'))) AS members
