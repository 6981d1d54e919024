-- Hypertables with their time dimension, chunk interval, compression switch and chunk counts (all and
-- compressed): a restore must bring back the same chunks in the same state.
SELECT
    format('%I.%I', h.hypertable_schema, h.hypertable_name) AS hypertable,
    d.column_name AS time_column,
    CAST(d.time_interval AS text) AS chunk_interval,
    h.compression_enabled,
    (SELECT count(*) FROM timescaledb_information.chunks ch
      WHERE ch.hypertable_schema = h.hypertable_schema AND ch.hypertable_name = h.hypertable_name) AS chunks,
    (SELECT count(*) FROM timescaledb_information.chunks ch
      WHERE ch.hypertable_schema = h.hypertable_schema AND ch.hypertable_name = h.hypertable_name
        AND ch.is_compressed) AS compressed_chunks
FROM timescaledb_information.hypertables h
JOIN timescaledb_information.dimensions d
  ON d.hypertable_schema = h.hypertable_schema AND d.hypertable_name = h.hypertable_name
 AND d.dimension_number = 1
ORDER BY 1
