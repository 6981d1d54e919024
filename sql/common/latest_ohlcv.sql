-- The newest :limit candles of one series (price kind :price), newest first (walks the
-- (exchange, symbol, interval, price, time)
-- key backwards, partition by partition, stopping after :limit rows).
SELECT exchange, symbol, interval, price, time, open, high, low, close, volume, quote_volume, trades_count, vwap,
       quality_score, is_anomaly, source
FROM ohlcv
WHERE exchange = :exchange
  AND symbol = :symbol
  AND interval = :interval
  AND price = :price
ORDER BY time DESC
LIMIT :limit
