-- Forget the hourly rollup rows of [start, end) before rebuilding them: a series whose candles are gone
-- from the range (retention, correction) must lose its bucket, as in a continuous aggregate.
DELETE FROM mw_aggregates.ohlcv_1h WHERE bucket >= :start AND bucket < :end
