DROP FUNCTION IF EXISTS mw_ensure_partitions(regclass, text, interval, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS mw_ensure_default_partition(regclass);
DROP FUNCTION IF EXISTS mw_partition_start(timestamptz, interval);
