-- Size, row estimate and bucket range of the rollup tables behind the views ohlcv_1h / ohlcv_1d
-- (plain PostgreSQL, TimescaleDB Apache-only). min/max(bucket) use the bucket index.
SELECT 'ohlcv_1h' AS table_name, 'rollup' AS kind,
       (SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'mw_aggregates.ohlcv_1h'::regclass) AS row_estimate,
       pg_total_relation_size('mw_aggregates.ohlcv_1h') AS total_bytes,
       0 AS pieces,
       (SELECT min(bucket) FROM mw_aggregates.ohlcv_1h) AS oldest,
       (SELECT max(bucket) FROM mw_aggregates.ohlcv_1h) AS newest
UNION ALL
SELECT 'ohlcv_1d', 'rollup',
       (SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'mw_aggregates.ohlcv_1d'::regclass),
       pg_total_relation_size('mw_aggregates.ohlcv_1d'),
       0,
       (SELECT min(bucket) FROM mw_aggregates.ohlcv_1d),
       (SELECT max(bucket) FROM mw_aggregates.ohlcv_1d)
