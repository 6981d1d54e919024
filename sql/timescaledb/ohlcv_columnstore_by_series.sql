-- Downgrade of migration 0005: `ohlcv`'s columnstore settings of migration 0003 (2.18+ syntax).
ALTER TABLE ohlcv SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol, interval',
    timescaledb.orderby = 'time DESC'
);
