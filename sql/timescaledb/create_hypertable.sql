-- Turns an (empty) table into a hypertable partitioned by time; chunk interval per table.
SELECT create_hypertable(
    CAST(:table_name AS regclass),
    by_range(CAST(:time_column AS name), CAST(:chunk_interval AS interval)),
    if_not_exists => true,
    create_default_indexes => false  -- the primary key already leads with the series and ends with time
)
