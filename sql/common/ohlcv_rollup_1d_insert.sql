-- Rebuild the daily rollup of [start, end) (whole UTC days) from the hourly rollup, as the hierarchical
-- continuous aggregate `ohlcv_1d` is built on `ohlcv_1h`.
INSERT INTO mw_aggregates.ohlcv_1d
    (exchange, symbol, price, bucket, open, high, low, close, volume, quote_volume, trades_count, vwap, candle_count)
SELECT
    exchange,
    symbol,
    price,
    date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day,
    (array_agg(open ORDER BY bucket))[1],
    max(high),
    min(low),
    (array_agg(close ORDER BY bucket DESC))[1],
    sum(volume),
    sum(quote_volume),
    sum(trades_count)::bigint,
    CASE WHEN count(vwap) = count(*) THEN sum(vwap * volume) / nullif(sum(volume), 0) END,
    sum(candle_count)::bigint
FROM mw_aggregates.ohlcv_1h
WHERE bucket >= :start AND bucket < :end
GROUP BY 1, 2, 3, 4
