-- A tag + behavior segment: gold or black tier, baby stage 0-6 months, not churned
-- (bitmap algebra over the tag index built by `audience index tags`), who put
-- something in the cart in the 30 days before 2026-12-01 but did not pay.
WITH tags AS (
  SELECT bitmap_andnot(
           bitmap_and(
             (SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'tier' AND value IN ('gold', 'black')),
             (SELECT bitmap FROM tag_bitmaps WHERE tag = 'baby_stage' AND value = '0-6m')),
           coalesce((SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps WHERE tag = 'churned'), bitmap_from_array([]))
         ) AS segment
),
behavior AS (
  SELECT member_id
  FROM events
  WHERE ts >= TIMESTAMP '2026-11-01 00:00:00' AND ts < TIMESTAMP '2026-12-01 00:00:00'
    AND event IN ('cart', 'pay')
  GROUP BY member_id
  HAVING bool_or(event = 'cart') AND NOT bool_or(event = 'pay')
)
SELECT (SELECT bitmap_cardinality(segment) FROM tags) AS tag_segment_members,
       count(*) AS with_cart_no_pay
FROM behavior b, tags t
WHERE bitmap_contains(t.segment, b.member_id);
