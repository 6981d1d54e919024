SELECT mw_drop_partition(CAST(:partition AS regclass))
