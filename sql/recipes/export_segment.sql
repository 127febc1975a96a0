-- A segment with its phone hashes, ready for a campaign tool: Champions and Loyal
-- Customers (RFM as of 2026-12-01) with a known phone hash.
-- Export it atomically (the file appears complete or not at all) with
--   audience export -f sql/recipes/export_segment.sql --to segment.parquet
-- or in SQL:
--   COPY (<this query>) TO 'segment.csv' STORED AS CSV;
SELECT r.member_id, m.phone_hash, r.segment, r.recency_days, r.frequency, round(r.monetary, 2) AS spend
FROM rfm('orders', TIMESTAMP '2026-12-01 00:00:00') r
JOIN members m ON m.member_id = r.member_id
WHERE r.segment IN ('Champions', 'Loyal Customers') AND m.phone_hash IS NOT NULL
ORDER BY spend DESC, r.member_id;
