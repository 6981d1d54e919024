-- 1h and 1d OHLCV per price kind as continuous aggregates (TimescaleDB full license; migration 0005 on, 0003
-- created them without the price kind); `ohlcv_1d` is built on `ohlcv_1h` (hierarchical). Only '1m' candles
-- are aggregated (one source interval per series, so volumes are never counted twice); the source interval
-- is not part of the key. Same columns as common/ohlcv_price_rollups.sql.
--
-- materialized_only: readers see what our job refreshed, never a real-time union with raw rows.
-- No refresh policy: resources/maintenance/aggregates.py refreshes exactly the windows the upserts
-- recorded in `aggregate_dirty_windows` (refresh_continuous_aggregate, in autocommit).
-- WITH NO DATA: the migration queues existing candles in the dirty log instead of refreshing here.
CREATE MATERIALIZED VIEW ohlcv_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = true, timescaledb.create_group_indexes = false) AS
SELECT
    exchange,
    symbol,
    price,
    time_bucket(INTERVAL '1 hour', time) AS bucket,
    first(open, time) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, time) AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trades_count)::bigint AS trades_count,
    CASE WHEN count(vwap) = count(*) THEN sum(vwap * volume) / nullif(sum(volume), 0) END AS vwap,
    count(*) AS candle_count
FROM ohlcv
WHERE interval = '1m'
GROUP BY exchange, symbol, price, time_bucket(INTERVAL '1 hour', time)
WITH NO DATA;

CREATE INDEX ix_ohlcv_1h_exchange_symbol_price_bucket ON ohlcv_1h (exchange, symbol, price, bucket);

CREATE MATERIALIZED VIEW ohlcv_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = true, timescaledb.create_group_indexes = false) AS
SELECT
    exchange,
    symbol,
    price,
    time_bucket(INTERVAL '1 day', bucket) AS bucket,
    first(open, bucket) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, bucket) AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trades_count)::bigint AS trades_count,
    CASE WHEN count(vwap) = count(*) THEN sum(vwap * volume) / nullif(sum(volume), 0) END AS vwap,
    sum(candle_count)::bigint AS candle_count
FROM ohlcv_1h
GROUP BY exchange, symbol, price, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE INDEX ix_ohlcv_1d_exchange_symbol_price_bucket ON ohlcv_1d (exchange, symbol, price, bucket);

COMMENT ON VIEW ohlcv_1h IS 'Hourly OHLCV of 1m candles (continuous aggregate refreshed by the maintenance job)';
COMMENT ON VIEW ohlcv_1d IS 'Daily OHLCV built from ohlcv_1h (continuous aggregate refreshed by the maintenance job)';
