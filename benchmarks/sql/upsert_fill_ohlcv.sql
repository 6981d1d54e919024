-- Benchmark data: :symbols one-minute series of :minutes candles each from :start (a chunk boundary),
-- generated server-side so that a 10M-row table takes a minute, not a load. Rows are laid out the way
-- upsert_dataframe writes them: chunk by chunk (:chunk_minutes), series by series within a chunk, in time
-- order (the LATERAL references only fix that nesting).
INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume, trades_count)
SELECT 'bench', 'SYM' || s, '1m', CAST(:start AS timestamptz) + m * INTERVAL '1 minute',
       100 + p, 101 + p, 99 + p, 100.5 + p, 10 * random(), (1000 * random())::bigint
FROM generate_series(0, (:minutes - 1) / :chunk_minutes) AS c
CROSS JOIN LATERAL generate_series(0, :symbols - 1 + 0 * c) AS s
CROSS JOIN LATERAL generate_series(
    c * :chunk_minutes, least((c + 1) * :chunk_minutes, :minutes) - 1 + 0 * s
) AS m
CROSS JOIN LATERAL (SELECT random() + s AS p) AS price
