-- Archived rows by id, locked against a concurrent restore.
SELECT id, table_name, row_key, row_data, reason, archived_at, archived_by, restored_at
FROM timeseries_archive
WHERE id = ANY(CAST(:ids AS bigint[]))
ORDER BY id
FOR UPDATE
