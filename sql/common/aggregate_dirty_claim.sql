-- Take up to :batch_hours pending hour buckets of a table out of the dirty log (oldest first), in the
-- refresh's own transaction. A load that recorded one of them and has not committed holds the row's lock
-- (its ON CONFLICT DO UPDATE): FOR UPDATE waits for it, so the rebuild that follows (a later statement, a
-- later snapshot) sees its rows; a bucket recorded after this statement stays for the next refresh.
DELETE FROM aggregate_dirty_windows AS d
USING (
    SELECT table_name, bucket_start FROM aggregate_dirty_windows
    WHERE table_name = :table_name
    ORDER BY bucket_start
    LIMIT :batch_hours
    FOR UPDATE
) AS picked
WHERE d.table_name = picked.table_name AND d.bucket_start = picked.bucket_start
RETURNING d.bucket_start
