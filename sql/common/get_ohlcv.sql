-- Candles of one series (one price kind, :price) with open time in [:start, :end), in time order, at most :limit rows
-- (:limit NULL = all). Used by the storage API (Warehouse.get_ohlcv) and the read benchmark; the bounds are
-- always bound (the API passes the ends of the timestamptz range for "unbounded") so the
-- (exchange, symbol, interval, price, time) key gives an index range scan and partitions are pruned.
SELECT exchange, symbol, interval, price, time, open, high, low, close, volume, quote_volume, trades_count, vwap,
       quality_score, is_anomaly, source
FROM ohlcv
WHERE exchange = :exchange
  AND symbol = :symbol
  AND interval = :interval
  AND price = :price
  AND time >= CAST(:start AS timestamptz)
  AND time < CAST(:end AS timestamptz)
ORDER BY time
LIMIT :limit
