-- The upsert of one staged batch as INSERT … ON CONFLICT, used where chunks may be compressed (TimescaleDB
-- full): a conflict decompresses only the batch holding that key, where a join would decompress whole
-- chunks. PostgreSQL 18+: RETURNING old/new tells inserted rows from updated ones.
-- The conflict clause is upsert_on_conflict_update.sql (only rows whose compared columns differ are
-- written) or upsert_on_conflict_nothing.sql (the frame carries key columns only); the audit CTEs
-- (upsert_audit.sql) and the dirty-window CTE (upsert_dirty.sql) are spliced in only when wanted. Unchanged
-- rows are not returned: they cost no write, no dirty window and no audit row.
WITH {audit}up AS (
    INSERT INTO {target} AS t ({columns})
    SELECT {columns} FROM {stage}
    {on_conflict}
    RETURNING new.{time_column} AS row_time, old.{time_column} IS NULL AS inserted
){dirty}
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated
FROM up
