-- Benchmark fixture (benchmarks/warehouse_api.py): one 1m series of :minutes candles from :start, built
-- server-side, with :hole_len consecutive candles missing every :hole_every minutes.
INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume)
SELECT 'bench', 'GAP/USDT', '1m',
       CAST(:start AS timestamptz) + i * interval '1 minute',
       100 + sin(i / 500.0), 101 + sin(i / 500.0), 99 + sin(i / 500.0), 100 + sin(i / 500.0) + cos(i / 37.0),
       1 + (i % 97)
FROM generate_series(0, CAST(:minutes AS int) - 1) AS i
WHERE i % CAST(:hole_every AS int) >= CAST(:hole_len AS int)
