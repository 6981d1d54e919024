-- Queue every hour that already holds 1m candles, so the first refresh after the aggregates are created
-- builds them from the existing history (the creation itself stays cheap).
INSERT INTO aggregate_dirty_windows (table_name, bucket_start)
SELECT DISTINCT 'ohlcv', date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00')
FROM ohlcv
WHERE interval = '1m'
ON CONFLICT (table_name, bucket_start) DO NOTHING
