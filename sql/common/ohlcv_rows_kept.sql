-- Whether [start, end) of ohlcv holds candles of an interval that is NOT expired there (then the chunk or
-- partition cannot be dropped whole, only the expired intervals' rows deleted).
SELECT EXISTS (
    SELECT 1 FROM ohlcv
    WHERE time >= :start AND time < :end AND NOT (interval = ANY(CAST(:expired AS text[])))
)
