SELECT mw_ensure_default_partition(CAST(:table_name AS regclass))
