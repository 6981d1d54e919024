-- Forget the buckets that were refreshed, only in the version that was read: a load that recorded the same
-- bucket again meanwhile changed `recorded_at`, so its entry stays for the next refresh.
DELETE FROM aggregate_dirty_windows AS d
USING unnest(CAST(:buckets AS timestamptz[]), CAST(:recorded AS timestamptz[])) AS r(bucket_start, recorded_at)
WHERE d.table_name = :table_name AND d.bucket_start = r.bucket_start AND d.recorded_at = r.recorded_at
