-- ohlcv_columnstore_by_series.sql in the syntax of TimescaleDB 2.13 - 2.17.
ALTER TABLE ohlcv SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol, interval',
    timescaledb.compress_orderby = 'time DESC'
);
