-- TimescaleDB 2.13 - 2.17 spelling of convert_to_columnstore.sql.
SELECT compress_chunk(CAST(:chunk AS regclass), if_not_compressed => true)
