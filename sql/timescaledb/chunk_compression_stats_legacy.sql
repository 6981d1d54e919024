-- TimescaleDB 2.13 - 2.17 spelling of chunk_columnstore_stats.sql.
SELECT chunk_schema AS schema_name, chunk_name AS relation_name,
       before_compression_total_bytes AS bytes_before, after_compression_total_bytes AS bytes_after
FROM chunk_compression_stats(CAST(:table_name AS regclass))
WHERE compression_status = 'Compressed'
