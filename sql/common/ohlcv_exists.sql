-- Whether a series has stored candles of :interval with open time in [:start, :end) (decides where
-- get_ohlcv reads 1h/1d candles from: stored ones, or the aggregates built from 1m candles).
SELECT EXISTS (
    SELECT 1 FROM ohlcv
    WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval
      AND time >= CAST(:start AS timestamptz) AND time < CAST(:end AS timestamptz)
)
