-- Bytes on disk of each chunk of a hypertable: heap, indexes and TOAST, plus its columnstore part when the
-- chunk is compressed (chunks_detailed_size adds the compressed chunk's size).
SELECT chunk_schema AS schema_name, chunk_name AS relation_name, total_bytes
FROM chunks_detailed_size(CAST(:table_name AS regclass))
