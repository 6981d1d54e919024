-- Pending (not yet aggregated) hour buckets of a table within [start, end).
SELECT count(*) FROM aggregate_dirty_windows
WHERE table_name = :table_name AND bucket_start >= :start AND bucket_start < :end
