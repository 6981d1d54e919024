-- Benchmark data: :symbols one-minute series of :minutes candles each from :start, generated server-side
-- (minute-major, as exchanges deliver them) so that a 10M-row table takes seconds, not a load.
INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume, trades_count)
SELECT 'bench', 'SYM' || s, '1m', CAST(:start AS timestamptz) + m * INTERVAL '1 minute',
       100 + p, 101 + p, 99 + p, 100.5 + p, 10 * random(), (1000 * random())::bigint
FROM generate_series(0, :minutes - 1) AS m
CROSS JOIN generate_series(0, :symbols - 1) AS s
CROSS JOIN LATERAL (SELECT random() + s AS p) AS price
