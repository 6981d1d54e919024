-- Start of the partition each row of a DEFAULT partition belongs in, with its number of rows (identifiers
-- composed by resources/maintenance/partitions.py): one partition is created per start, and its rows move
-- into it.
SELECT mw_partition_start({time_column}, CAST(:every AS interval)) AS start, count(*) AS row_count
FROM {piece}
GROUP BY 1
ORDER BY 1
