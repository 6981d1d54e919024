-- Benchmark baseline (benchmarks/warehouse_api.py): the gap report of sql/common/ohlcv_gaps.sql computed the
-- other way, by generating every expected open time in [:start, :end) and anti-joining the stored candles,
-- then grouping consecutive missing times into runs. Same answer, cost proportional to the range's length.
-- One price kind (:price, part of the key since migration 0005), as get_ohlcv_gaps reads.
WITH expected AS (
    SELECT t AS time
    FROM generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) - CAST(:step AS interval),
                         CAST(:step AS interval)) AS t
),
missing AS (
    SELECT e.time
    FROM expected e
    WHERE NOT EXISTS (
        SELECT 1 FROM ohlcv o
        WHERE o.exchange = :exchange AND o.symbol = :symbol AND o.interval = :interval AND o.price = :price
          AND o.time = e.time
    )
),
runs AS (
    SELECT time, time - row_number() OVER (ORDER BY time) * CAST(:step AS interval) AS run
    FROM missing
)
SELECT min(time) AS start, max(time) AS "end", count(*) AS missing
FROM runs
GROUP BY run
ORDER BY 1
