-- Session-scoped advisory locks of a whole load (resources/warehouse/load.py): the same keys as upsert_lock,
-- so every other loader of these buckets waits until the load releases them (upsert_unlock_session), while
-- the load's own per-batch transaction locks are granted at once. Buckets sorted ascending, as upsert_lock.
SELECT pg_advisory_lock(hashtext(:table_name), bucket)
FROM unnest(CAST(:buckets AS integer[])) AS bucket
