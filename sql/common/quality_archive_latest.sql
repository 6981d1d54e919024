-- The latest archived version of one row (by table and natural key) not restored yet. Time key parts are
-- compared as instants: the archive's JSON renders them in the session time zone of the writer.
SELECT id, table_name, row_key, row_data, reason, archived_at, archived_by, restored_at
FROM timeseries_archive
WHERE table_name = :table_name
  AND restored_at IS NULL
  AND (row_key - CAST(:time_keys AS text[])) = CAST(:plain AS jsonb)
  AND NOT EXISTS (
      SELECT 1
      FROM jsonb_each_text(CAST(:times AS jsonb)) AS k(name, value)
      WHERE CAST(row_key ->> k.name AS timestamptz) IS DISTINCT FROM CAST(k.value AS timestamptz)
  )
ORDER BY archived_at DESC, id DESC
LIMIT 1
FOR UPDATE
