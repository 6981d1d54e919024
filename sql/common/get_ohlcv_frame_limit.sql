-- get_ohlcv_frame.sql with at most :limit candles per series (the first ones in time order): one index range
-- scan per series. The row of NULLs after the candles with :cold: ohlcv_cold_marker.sql.
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
\ir ohlcv_cold_marker.sql
ORDER BY symbol, time
