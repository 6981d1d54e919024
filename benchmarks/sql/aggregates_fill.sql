-- Benchmark fixture (benchmarks/aggregates.py): :symbols series of :minutes 1m candles from :start, built
-- server-side (a deterministic random walk per series), with their hours queued in the dirty log.
WITH candles AS (
    INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume, quote_volume, trades_count)
    SELECT 'bench', 'S' || s || '/USDT', '1m',
           CAST(:start AS timestamptz) + i * interval '1 minute',
           100 + s + sin((i + s * 7) / 300.0) * 5,
           101 + s + sin((i + s * 7) / 300.0) * 5,
           99 + s + sin((i + s * 7) / 300.0) * 5,
           100 + s + sin((i + s * 7) / 300.0) * 5 + cos(i / 37.0),
           1 + (i % 97), (1 + (i % 97)) * (100 + s), 1 + (i % 13)
    FROM generate_series(1, CAST(:symbols AS int)) AS s,
         generate_series(0, CAST(:minutes AS int) - 1) AS i
    RETURNING time
)
INSERT INTO aggregate_dirty_windows (table_name, bucket_start)
SELECT DISTINCT 'ohlcv', date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') FROM candles
ON CONFLICT (table_name, bucket_start) DO NOTHING
