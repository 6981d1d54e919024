-- Candles of one or many series of an exchange, interval and price kind (:price) with open time in [:start, :end), ordered by
-- symbol then time: the frame reads of the storage API (get_ohlcv_frame), read as Arrow through ADBC. One
-- query for every series (:symbols, a text array); the bounds are always bound so the primary key gives
-- index scans and partitions are pruned. :limit (NULL = all) is for one series; a limit per series of many is
-- get_ohlcv_frame_limit.sql. The exchange,
-- the interval and the price kind are the caller's constants: not sent once per row (the reader adds them).
-- With :cold, one row of NULLs (a symbol NULL: never a stored candle) follows the candles when cold-tier
-- files (cold_pieces) of the series overlap [:start, :cold_end) (:cold_end: the end of the caller's whole
-- range, past :end when this reads a limit's window): the reader then reads the manifest. Most reads reach
-- no cold file and so make one round trip, not two.
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
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE CAST(:cold AS boolean)
  AND EXISTS (
    SELECT FROM cold_pieces
    WHERE table_name = 'ohlcv'
      AND exchange = :exchange
      AND symbol = ANY(CAST(:symbols AS text[]))
      AND interval = :interval
      AND price = :price
      AND min_time < CAST(:cold_end AS timestamptz)
      AND max_time >= CAST(:start AS timestamptz)
  )
ORDER BY symbol, time
