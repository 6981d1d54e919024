-- Volume by price level: the close prices of the candles opened in [:start, :end) cut into :bins equal bins
-- between their min and max (width_bucket; the max goes to the last bin, as numpy.histogram does).
-- Every bin is returned, empty ones with zero volume, so the profile can be plotted as is.
WITH candles AS (
    SELECT close, volume
    FROM ohlcv
    WHERE exchange = :exchange
      AND symbol = :symbol
      AND interval = :interval
      AND price = :price
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
),
bounds AS (
    SELECT min(close) AS lo, max(close) AS hi FROM candles
),
binned AS (
    SELECT CASE WHEN b.hi = b.lo THEN 1
                ELSE least(width_bucket(c.close, b.lo, b.hi, CAST(:bins AS int)), CAST(:bins AS int))
           END AS level,
           c.volume
    FROM candles c CROSS JOIN bounds b
)
SELECT s.level,
       b.lo + (b.hi - b.lo) * (s.level - 1) / CAST(:bins AS int) AS price_low,
       b.lo + (b.hi - b.lo) * s.level / CAST(:bins AS int) AS price_high,
       coalesce(sum(x.volume), 0) AS volume,
       count(x.level) AS candles
FROM bounds b
CROSS JOIN generate_series(1, CAST(:bins AS int)) AS s(level)
LEFT JOIN binned x ON x.level = s.level
WHERE b.lo IS NOT NULL
GROUP BY s.level, b.lo, b.hi
ORDER BY s.level
