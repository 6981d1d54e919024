-- Hour buckets of the rows this batch inserted or changed, for the incremental refresh of aggregates.
-- DO UPDATE (not DO NOTHING) locks an already-pending row, so a refresh job that consumes the log with
-- DELETE … RETURNING and refreshes in the same transaction waits for this load to commit, then sees its rows.
, dirty AS (
    INSERT INTO aggregate_dirty_windows AS d (table_name, bucket_start)
    SELECT DISTINCT %(table_name)s, date_trunc('hour', row_time, 'UTC') FROM up
    ON CONFLICT (table_name, bucket_start) DO UPDATE SET recorded_at = now()
)
