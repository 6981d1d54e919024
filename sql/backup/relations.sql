-- The relations a backup accounts for: ordinary and partitioned tables outside the system and TimescaleDB
-- internal schemas (chunks and partitions are counted through their parent), not owned by an extension,
-- with their primary-key columns in key order; `collatable` says which key columns need COLLATE "C" so the
-- order does not depend on the database's collation.
SELECT
    n.nspname AS schema_name,
    c.relname AS relation_name,
    coalesce(
        array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), ARRAY[]::name[]
    ) AS key_columns,
    coalesce(
        array_agg(a.attcollation <> 0 ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), ARRAY[]::boolean[]
    ) AS collatable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^(pg_|_timescaledb|timescaledb_)'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
GROUP BY n.nspname, c.relname
ORDER BY n.nspname, c.relname
