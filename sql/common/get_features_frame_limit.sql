-- get_features_frame.sql with at most :limit rows per series (the first ones in time order).
SELECT f.symbol, f.time, f.log_return, f.volatility, f.rsi, f.macd,
       f.macd_signal, f.macd_hist, f.bb_upper, f.bb_middle, f.bb_lower, f.atr, f.vwap, f.volume_zscore
FROM unnest(CAST(:symbols AS text[])) AS s(symbol)
CROSS JOIN LATERAL (
    SELECT *
    FROM features
    WHERE exchange = :exchange
      AND symbol = s.symbol
      AND interval = :interval
      AND feature_set = :feature_set
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
    ORDER BY time
    LIMIT :limit
) AS f
ORDER BY f.symbol, f.time
