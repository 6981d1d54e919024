-- 1h and 1d OHLCV rollups per price kind (migration 0005 on; 0003 created them without it) where continuous
-- aggregates are unavailable (plain PostgreSQL, TimescaleDB Apache-only). Same columns as the continuous
-- aggregates of timescaledb/ohlcv_price_continuous_aggregates.sql.
--
-- The storage tables live in their own schema and `ohlcv_1h` / `ohlcv_1d` in the warehouse schema are
-- views on them, as the continuous aggregates are views on their materialization hypertables: readers see
-- one relation name on every backend, and the warehouse schema holds exactly the tables of the models.
-- Buckets are UTC hours / days of the candles' open time; only '1m' candles are aggregated (one source
-- interval per series, so volumes are never counted twice); the source interval is not part of the key.
-- Refreshed incrementally by resources/maintenance/aggregates.py from `aggregate_dirty_windows`.
CREATE SCHEMA mw_aggregates;

CREATE TABLE mw_aggregates.ohlcv_1h (
    exchange text NOT NULL,
    symbol text NOT NULL,
    price text NOT NULL,
    bucket timestamptz NOT NULL,
    open double precision,
    high double precision,
    low double precision,
    close double precision,
    volume double precision,
    quote_volume double precision,
    trades_count bigint,
    vwap double precision,
    candle_count bigint NOT NULL,
    CONSTRAINT pk_ohlcv_1h PRIMARY KEY (exchange, symbol, price, bucket)
);
-- The refresh deletes and rebuilds whole bucket ranges, and the daily rollup reads hours by range.
CREATE INDEX ix_ohlcv_1h_bucket ON mw_aggregates.ohlcv_1h (bucket);

CREATE TABLE mw_aggregates.ohlcv_1d (
    exchange text NOT NULL,
    symbol text NOT NULL,
    price text NOT NULL,
    bucket timestamptz NOT NULL,
    open double precision,
    high double precision,
    low double precision,
    close double precision,
    volume double precision,
    quote_volume double precision,
    trades_count bigint,
    vwap double precision,
    candle_count bigint NOT NULL,
    CONSTRAINT pk_ohlcv_1d PRIMARY KEY (exchange, symbol, price, bucket)
);
CREATE INDEX ix_ohlcv_1d_bucket ON mw_aggregates.ohlcv_1d (bucket);

CREATE VIEW ohlcv_1h AS
SELECT exchange, symbol, price, bucket, open, high, low, close, volume, quote_volume, trades_count, vwap, candle_count
FROM mw_aggregates.ohlcv_1h;

CREATE VIEW ohlcv_1d AS
SELECT exchange, symbol, price, bucket, open, high, low, close, volume, quote_volume, trades_count, vwap, candle_count
FROM mw_aggregates.ohlcv_1d;

COMMENT ON VIEW ohlcv_1h IS 'Hourly OHLCV of 1m candles (rollup refreshed by the maintenance job)';
COMMENT ON VIEW ohlcv_1d IS 'Daily OHLCV built from ohlcv_1h (rollup refreshed by the maintenance job)';
