-- The chunks of a hypertable with their time range and columnstore state, oldest first.
SELECT
    ch.chunk_schema AS schema_name,
    ch.chunk_name AS relation_name,
    ch.range_start,
    ch.range_end,
    ch.is_compressed AS compressed,
    false AS is_default
FROM timescaledb_information.chunks ch
JOIN pg_class c ON c.oid = CAST(:table_name AS regclass)
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ch.hypertable_schema = n.nspname AND ch.hypertable_name = c.relname
ORDER BY ch.range_start
