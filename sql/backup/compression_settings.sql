-- Columnstore (compression) settings per hypertable: segment-by and order-by as TimescaleDB reports them.
SELECT
    CAST(hypertable AS text) AS hypertable,
    segmentby,
    orderby
FROM timescaledb_information.hypertable_compression_settings
ORDER BY 1
