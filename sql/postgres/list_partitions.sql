-- The partitions of a range-partitioned table with their bounds, oldest first, DEFAULT first of all.
-- Bounds are read back from the partition definition (rendered and re-parsed in the session's own zone).
SELECT
    n.nspname AS schema_name,
    c.relname AS relation_name,
    CAST(b.bounds[1] AS timestamptz) AS range_start,
    CAST(b.bounds[2] AS timestamptz) AS range_end,
    false AS compressed,
    pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL regexp_match(
    pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)'
) AS b(bounds) ON true
WHERE i.inhparent = CAST(:table_name AS regclass)
ORDER BY is_default DESC, range_start
