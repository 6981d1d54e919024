-- Archive rows written back by a restore.
UPDATE timeseries_archive
SET restored_at = now()
WHERE id = ANY(CAST(:ids AS bigint[]))
