-- Candles of one or many series of an exchange, interval and price kind (:price) with open time in [:start, :end), ordered by
-- symbol then time: the frame reads of the storage API (get_ohlcv_frame), read as Arrow through ADBC. One
-- query for every series (:symbols, a text array); the bounds are always bound so the primary key gives
-- index scans and partitions are pruned. :limit (NULL = all) is for one series; a limit per series of many is
-- get_ohlcv_frame_limit.sql. The exchange,
-- the interval and the price kind are the caller's constants: not sent once per row (the reader adds them).
-- With :cold, the row of NULLs of ohlcv_cold_marker.sql follows the candles.
(
    SELECT symbol, time, open, high, low, close, volume, quote_volume, trades_count, vwap, quality_score,
           is_anomaly, source
    FROM ohlcv
    WHERE exchange = :exchange
      AND symbol = ANY(CAST(:symbols AS text[]))
      AND interval = :interval
      AND price = :price
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
    ORDER BY symbol, time
    LIMIT :limit
)
\ir ohlcv_cold_marker.sql
ORDER BY symbol, time
