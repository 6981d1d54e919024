-- Bytes on disk of each partition of a range-partitioned table (heap, indexes and TOAST).
SELECT n.nspname AS schema_name, c.relname AS relation_name, pg_total_relation_size(c.oid) AS total_bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = CAST(:table_name AS regclass)
