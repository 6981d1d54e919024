-- Retention by rows: the candles of expired intervals in [start, end), where other intervals are kept.
DELETE FROM ohlcv
WHERE time >= :start AND time < :end AND interval = ANY(CAST(:expired AS text[]))
