-- Per table: kind, estimated rows and total size, chunks included (TimescaleDB).
SELECT
    c.relname AS table_name,
    CASE WHEN h.hypertable_name IS NOT NULL THEN 'hypertable' ELSE 'regular' END AS kind,
    CASE WHEN h.hypertable_name IS NOT NULL THEN approximate_row_count(c.oid)
         ELSE greatest(c.reltuples, 0)::bigint END AS row_estimate,
    CASE WHEN h.hypertable_name IS NOT NULL THEN hypertable_size(c.oid)
         ELSE pg_total_relation_size(c.oid) END AS total_bytes,
    coalesce(h.num_chunks, 0)::int AS pieces
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN timescaledb_information.hypertables h
       ON h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname
WHERE n.nspname = current_schema()
  AND c.relkind IN ('r', 'p')
  AND c.relname = ANY(CAST(:tables AS text[]))
ORDER BY c.relname
