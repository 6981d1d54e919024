-- Unreleased quarantined rows of a table for a run and/or a partition (NULL = any).
SELECT count(*)
FROM quarantine
WHERE table_name = :table_name
  AND released_at IS NULL
  AND (CAST(:run_id AS text) IS NULL OR run_id = :run_id)
  AND (CAST(:partition_key AS text) IS NULL OR partition_key = :partition_key)
