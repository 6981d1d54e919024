-- Candles of one series from an aggregate, in the shape of common/get_ohlcv.sql (same parameters, same
-- columns, plus candle_count = the 1m candles behind each bucket). {aggregate} is ohlcv_1h or ohlcv_1d,
-- substituted from a closed list by resources/maintenance/aggregates.py:aggregate_query; :interval is only
-- echoed back ('1h' / '1d'). Bucket start in [:start, :end), in time order, at most :limit rows.
SELECT exchange, symbol, CAST(:interval AS text) AS interval, price, bucket AS time, open, high, low, close, volume,
       quote_volume, trades_count, vwap,
       CAST(NULL AS real) AS quality_score, false AS is_anomaly, 'aggregate:{aggregate}' AS source,
       candle_count
FROM {aggregate}
WHERE exchange = :exchange
  AND symbol = :symbol
  AND price = :price
  AND bucket >= CAST(:start AS timestamptz)
  AND bucket < CAST(:end AS timestamptz)
ORDER BY bucket
LIMIT :limit
