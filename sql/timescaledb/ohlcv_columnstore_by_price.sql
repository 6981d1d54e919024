-- `ohlcv`'s columnstore settings since migration 0005 (TimescaleDB 2.18+): one segment per series, the price
-- kind included, so a trade and a mark series of the same symbol never share a segment.
ALTER TABLE ohlcv SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'exchange, symbol, interval, price',
    timescaledb.orderby = 'time DESC'
);
