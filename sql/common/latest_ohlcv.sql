-- The newest :limit candles of one series, newest first (walks the (exchange, symbol, interval, time)
-- key backwards, partition by partition, stopping after :limit rows).
SELECT exchange, symbol, interval, time, open, high, low, close, volume, quote_volume, trades_count, vwap,
       quality_score, is_anomaly, source
FROM ohlcv
WHERE exchange = :exchange
  AND symbol = :symbol
  AND interval = :interval
ORDER BY time DESC
LIMIT :limit
