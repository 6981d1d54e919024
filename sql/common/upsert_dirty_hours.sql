-- Dirty windows of a batch written by the fast path: its hour buckets, computed by the caller.
INSERT INTO aggregate_dirty_windows AS d (table_name, bucket_start)
SELECT :table_name, bucket_start FROM unnest(CAST(:hours AS timestamptz[])) AS bucket_start
ON CONFLICT (table_name, bucket_start) DO UPDATE SET recorded_at = now()
