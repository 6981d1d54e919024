-- Size, row estimate, chunks and bucket range of the continuous aggregates ohlcv_1h / ohlcv_1d, read from
-- their materialization hypertables (TimescaleDB full license).
WITH mat AS (
    SELECT ca.view_name,
           CAST(format('%I.%I', ca.materialization_hypertable_schema, ca.materialization_hypertable_name) AS regclass) AS ht,
           ca.materialization_hypertable_schema AS ht_schema,
           ca.materialization_hypertable_name AS ht_name
    FROM timescaledb_information.continuous_aggregates ca
    WHERE ca.view_schema = current_schema() AND ca.view_name IN ('ohlcv_1h', 'ohlcv_1d')
)
SELECT mat.view_name AS table_name,
       'continuous aggregate' AS kind,
       approximate_row_count(mat.ht) AS row_estimate,
       hypertable_size(mat.ht) AS total_bytes,
       (SELECT count(*) FROM timescaledb_information.chunks ch
         WHERE ch.hypertable_schema = mat.ht_schema AND ch.hypertable_name = mat.ht_name)::int AS pieces,
       CASE mat.view_name WHEN 'ohlcv_1h' THEN (SELECT min(bucket) FROM ohlcv_1h)
                          ELSE (SELECT min(bucket) FROM ohlcv_1d) END AS oldest,
       CASE mat.view_name WHEN 'ohlcv_1h' THEN (SELECT max(bucket) FROM ohlcv_1h)
                          ELSE (SELECT max(bucket) FROM ohlcv_1d) END AS newest
FROM mat
ORDER BY mat.view_name
