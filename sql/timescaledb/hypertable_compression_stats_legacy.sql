-- TimescaleDB 2.13 - 2.17 spelling of hypertable_columnstore_stats.sql.
SELECT total_chunks, number_compressed_chunks AS compressed_chunks,
       before_compression_total_bytes AS bytes_before, after_compression_total_bytes AS bytes_after
FROM hypertable_compression_stats(CAST(:table_name AS regclass))
