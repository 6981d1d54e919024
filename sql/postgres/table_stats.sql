-- Per table: kind, estimated rows and total size, partitions included (plain PostgreSQL).
SELECT
    c.relname AS table_name,
    CASE c.relkind WHEN 'p' THEN 'partitioned' ELSE 'regular' END AS kind,
    (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint
       FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf) AS row_estimate,
    (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint
       FROM pg_partition_tree(c.oid) t) AS total_bytes,
    (SELECT count(*) FROM pg_partition_tree(c.oid) t WHERE t.level = 1)::int AS pieces
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relname = ANY(CAST(:tables AS text[]))
ORDER BY c.relname
