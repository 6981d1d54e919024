-- The same settings as columnstore_settings.sql in the syntax of TimescaleDB 2.13 - 2.17.
ALTER TABLE ohlcv SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol, interval',
    timescaledb.compress_orderby = 'time DESC'
);
ALTER TABLE market_metrics SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol, interval',
    timescaledb.compress_orderby = 'time DESC'
);
ALTER TABLE features SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol, interval, feature_set',
    timescaledb.compress_orderby = 'time DESC'
);
ALTER TABLE market_trades SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol',
    timescaledb.compress_orderby = 'time DESC, trade_id'
);
ALTER TABLE orderbook_snapshots SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol',
    timescaledb.compress_orderby = 'time DESC'
);
