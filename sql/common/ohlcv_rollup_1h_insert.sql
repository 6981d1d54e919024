-- Rebuild the hourly rollup of [start, end) (whole UTC hours) from the 1m candles; returns one row per bucket
-- and price kind written. Same definition as the continuous aggregate `ohlcv_1h` (first/last by open time).
INSERT INTO mw_aggregates.ohlcv_1h
    (exchange, symbol, price, bucket, open, high, low, close, volume, quote_volume, trades_count, vwap, candle_count)
SELECT
    exchange,
    symbol,
    price,
    date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
    (array_agg(open ORDER BY time))[1],
    max(high),
    min(low),
    (array_agg(close ORDER BY time DESC))[1],
    sum(volume),
    sum(quote_volume),
    sum(trades_count)::bigint,
    CASE WHEN count(vwap) = count(*) THEN sum(vwap * volume) / nullif(sum(volume), 0) END,
    count(*)
FROM ohlcv
WHERE interval = '1m' AND time >= :start AND time < :end
GROUP BY 1, 2, 3, 4
