-- Columnstore totals of one hypertable (TimescaleDB 2.18+): chunks converted and bytes before/after.
SELECT total_chunks, number_compressed_chunks AS compressed_chunks,
       before_compression_total_bytes AS bytes_before, after_compression_total_bytes AS bytes_after
FROM hypertable_columnstore_stats(CAST(:table_name AS regclass))
