-- The materializations that produced one lineage row, recursively: each upstream entry
-- {"asset_key", "partition", "run_id", ...} of a row points to the lineage row of that asset, partition
-- and run (the latest one if the run wrote several). Entries without a lineage row (source assets such as
-- ohlcv or historical_files) end the walk and are resolved to files and exchange responses by the caller.
WITH RECURSIVE chain AS (
    SELECT l.id, l.asset_key, l.partition_key, l.run_id, l.code_version, l.data_version, l.upstream,
           l.rows_in, l.rows_out, l.created_at, 0 AS depth, CAST(NULL AS bigint) AS downstream_id
    FROM lineage l
    WHERE l.id = :lineage_id
    UNION ALL
    SELECT p.id, p.asset_key, p.partition_key, p.run_id, p.code_version, p.data_version, p.upstream,
           p.rows_in, p.rows_out, p.created_at, c.depth + 1, c.id
    FROM chain c
    CROSS JOIN LATERAL jsonb_array_elements(c.upstream) AS u(entry)
    CROSS JOIN LATERAL (
        SELECT *
        FROM lineage p
        WHERE p.asset_key = u.entry ->> 'asset_key'
          AND p.partition_key IS NOT DISTINCT FROM u.entry ->> 'partition'
          AND p.run_id = u.entry ->> 'run_id'
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT 1
    ) p
    WHERE c.depth < :max_depth
)
SELECT id, asset_key, partition_key, run_id, code_version, data_version, upstream, rows_in, rows_out,
       created_at, depth, downstream_id
FROM chain
ORDER BY depth, asset_key, partition_key
