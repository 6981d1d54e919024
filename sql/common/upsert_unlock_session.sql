-- Releases the locks taken by upsert_lock_session (once each: they were taken once each).
SELECT pg_advisory_unlock(hashtext(:table_name), bucket)
FROM unnest(CAST(:buckets AS integer[])) AS bucket
