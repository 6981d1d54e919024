DROP FUNCTION IF EXISTS mw_drop_partition(regclass);
