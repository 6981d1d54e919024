SELECT mw_ensure_partitions(
    CAST(:table_name AS regclass), :time_column, CAST(:every AS interval), :from_ts, :to_ts
) AS created
