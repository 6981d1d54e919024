-- Stored features of one feature set for one or many series of an exchange and interval, time in
-- [:start, :end), ordered by symbol then time: the frame reads of the storage API (get_features_frame).
-- The exchange, interval and feature set are the caller's constants (added by the reader).
SELECT symbol, time, log_return, volatility, rsi, macd, macd_signal,
       macd_hist, bb_upper, bb_middle, bb_lower, atr, vwap, volume_zscore
FROM features
WHERE exchange = :exchange
  AND symbol = ANY(CAST(:symbols AS text[]))
  AND interval = :interval
  AND feature_set = :feature_set
  AND time >= CAST(:start AS timestamptz)
  AND time < CAST(:end AS timestamptz)
ORDER BY symbol, time
LIMIT :limit
