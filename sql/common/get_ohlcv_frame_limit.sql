-- get_ohlcv_frame.sql with at most :limit candles per series (the first ones in time order): one index range
-- scan per series. The row of NULLs after the candles with :cold: as in get_ohlcv_frame.sql.
(
    SELECT o.symbol, o.time, o.open, o.high, o.low, o.close, o.volume, o.quote_volume, o.trades_count, o.vwap,
           o.quality_score, o.is_anomaly, o.source
    FROM unnest(CAST(:symbols AS text[])) AS s(symbol)
    CROSS JOIN LATERAL (
        SELECT *
        FROM ohlcv
        WHERE exchange = :exchange
          AND symbol = s.symbol
          AND interval = :interval
          AND price = :price
          AND time >= CAST(:start AS timestamptz)
          AND time < CAST(:end AS timestamptz)
        ORDER BY time
        LIMIT :limit
    ) AS o
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
