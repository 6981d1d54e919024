-- One refresh of a table's rollups at a time: a daily bucket is rebuilt from hours another refresh may
-- still be rebuilding, so concurrent refreshes (hourly and nightly job) take turns per transaction.
SELECT pg_advisory_xact_lock(hashtext('mw_aggregate_refresh'), hashtext(:table_name))
