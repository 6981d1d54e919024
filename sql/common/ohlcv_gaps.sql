-- Missing candles of one series (price kind :price) among open times in [:start, :end), for a fixed-length :step.
-- Holes between stored candles come from lead(time) in one streaming pass over the series' key (index-only
-- scan, no materialized grid, no anti-join). The edges of a bounded range (before the first / after the last
-- stored candle) continue the stored candles' grid; first and last come from the key's two ends. A bounded
-- range with nothing stored is one gap on the epoch-aligned grid.
WITH step AS (
    SELECT CAST(:step AS interval) AS step, extract(epoch FROM CAST(:step AS interval)) AS seconds
),
edges AS (
    SELECT
        (SELECT min(time) FROM ohlcv
          WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval AND price = :price
            AND time >= CAST(:start AS timestamptz) AND time < CAST(:end AS timestamptz)) AS first_time,
        (SELECT max(time) FROM ohlcv
          WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval AND price = :price
            AND time >= CAST(:start AS timestamptz) AND time < CAST(:end AS timestamptz)) AS last_time
),
gaps AS (
    SELECT c.time + s.step AS gap_start,
           c.next_time - s.step AS gap_end,
           round(extract(epoch FROM c.next_time - c.time) / s.seconds)::bigint - 1 AS missing
    FROM (
        SELECT time, lead(time) OVER (ORDER BY time) AS next_time
        FROM ohlcv
        WHERE exchange = :exchange
          AND symbol = :symbol
          AND interval = :interval
          AND price = :price
          AND time >= CAST(:start AS timestamptz)
          AND time < CAST(:end AS timestamptz)
    ) c
    CROSS JOIN step s
    WHERE c.next_time > c.time + s.step
    UNION ALL
    SELECT e.first_time - n.k * s.step, e.first_time - s.step, n.k
    FROM edges e
    CROSS JOIN step s
    CROSS JOIN LATERAL (
        SELECT floor(extract(epoch FROM e.first_time - CAST(:start AS timestamptz)) / s.seconds)::bigint AS k
    ) n
    WHERE CAST(:bounded_start AS boolean) AND n.k > 0
    UNION ALL
    SELECT e.last_time + s.step, e.last_time + n.k * s.step, n.k
    FROM edges e
    CROSS JOIN step s
    CROSS JOIN LATERAL (
        SELECT ceil(extract(epoch FROM CAST(:end AS timestamptz) - e.last_time) / s.seconds)::bigint - 1 AS k
    ) n
    WHERE CAST(:bounded_end AS boolean) AND n.k > 0
    UNION ALL
    SELECT g.first_expected, g.first_expected + (n.k - 1) * s.step, n.k
    FROM edges e
    CROSS JOIN step s
    CROSS JOIN LATERAL (
        SELECT date_bin(s.step, CAST(:start AS timestamptz), timestamptz 'epoch') AS binned
    ) b
    CROSS JOIN LATERAL (
        SELECT CASE WHEN b.binned < CAST(:start AS timestamptz) THEN b.binned + s.step ELSE b.binned END
               AS first_expected
    ) g
    CROSS JOIN LATERAL (
        SELECT ceil(extract(epoch FROM CAST(:end AS timestamptz) - g.first_expected) / s.seconds)::bigint AS k
    ) n
    WHERE CAST(:bounded_start AS boolean) AND CAST(:bounded_end AS boolean)
      AND e.first_time IS NULL AND n.k > 0
)
SELECT CAST(:exchange AS text) AS exchange,
       CAST(:symbol AS text) AS symbol,
       CAST(:interval AS text) AS interval,
       gap_start AS start,
       gap_end AS "end",
       missing
FROM gaps
ORDER BY gap_start
