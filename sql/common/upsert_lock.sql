-- One transaction-scoped advisory lock per (table, chunk-interval bucket) touched by the batch. The caller
-- passes the buckets sorted ascending and unnest() yields them in that order, so two loads of overlapping
-- ranges take their common locks in the same order: they serialize instead of deadlocking.
SELECT pg_advisory_xact_lock(hashtext(:table_name), bucket)
FROM unnest(CAST(:buckets AS integer[])) AS bucket
