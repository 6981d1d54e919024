-- The pending hour buckets of a table, read without consuming them (continuous aggregates are refreshed
-- outside a transaction, so the log is consumed afterwards by aggregate_dirty_forget.sql).
SELECT bucket_start, recorded_at FROM aggregate_dirty_windows WHERE table_name = :table_name
ORDER BY bucket_start
