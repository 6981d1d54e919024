-- Starts of the partitions covering [from_ts, to_ts], walked as mw_ensure_partitions walks them (aligned
-- by mw_partition_start, stepped by the interval's exact length in seconds): what it would create if missing.
SELECT generate_series(
    mw_partition_start(CAST(:from_ts AS timestamptz), CAST(:every AS interval)),
    CAST(:to_ts AS timestamptz),
    make_interval(secs => extract(epoch FROM CAST(:every AS interval)))
) AS start
