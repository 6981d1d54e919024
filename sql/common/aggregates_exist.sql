-- Whether migration 0003 created the aggregates here (a view or a continuous aggregate named ohlcv_1h).
SELECT to_regclass('ohlcv_1h') IS NOT NULL
