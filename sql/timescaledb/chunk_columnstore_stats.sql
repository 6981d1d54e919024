-- Bytes before/after conversion of each columnstore chunk of a hypertable (TimescaleDB 2.18+).
SELECT chunk_schema AS schema_name, chunk_name AS relation_name,
       before_compression_total_bytes AS bytes_before, after_compression_total_bytes AS bytes_after
FROM chunk_columnstore_stats(CAST(:table_name AS regclass))
WHERE compression_status = 'Compressed'
