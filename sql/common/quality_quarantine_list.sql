-- Quarantined rows, newest first; every filter is optional (NULL = any).
SELECT id, table_name, key, row_data, rule, message, run_id, partition_key, source, created_at,
       released_at, released_by_run
FROM quarantine
WHERE (CAST(:table_name AS text) IS NULL OR table_name = :table_name)
  AND (CAST(:rule AS text) IS NULL OR rule = :rule)
  AND (CAST(:run_id AS text) IS NULL OR run_id = :run_id)
  AND (CAST(:partition_key AS text) IS NULL OR partition_key = :partition_key)
  AND (:include_released OR released_at IS NULL)
ORDER BY created_at DESC, id DESC
LIMIT :limit
