-- Start of the partition each row of a DEFAULT partition belongs in (identifiers composed by
-- resources/maintenance/partitions.py): one partition is created per value, and its rows move into it.
SELECT DISTINCT mw_partition_start({time_column}, CAST(:every AS interval)) AS start FROM {piece} ORDER BY 1
