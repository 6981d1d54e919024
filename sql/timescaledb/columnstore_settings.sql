-- Columnstore settings of the large market-data hypertables (TimescaleDB 2.18+, full license): segments
-- per series, newest first inside a segment, so one series' range is one segment scan. Chunks are
-- converted by the maintenance job (resources/maintenance/compression.py), not by a policy.
ALTER TABLE ohlcv SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol, interval',
    timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_metrics SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol, interval',
    timescaledb.orderby = 'time DESC'
);
ALTER TABLE features SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol, interval, feature_set',
    timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_trades SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol',
    timescaledb.orderby = 'time DESC, trade_id'
);
ALTER TABLE orderbook_snapshots SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol',
    timescaledb.orderby = 'time DESC'
);
