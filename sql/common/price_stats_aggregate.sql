-- Close-price statistics of one series from an aggregate ({aggregate}: ohlcv_1h or ohlcv_1d, substituted
-- by resources/maintenance/aggregates.py:aggregate_query), over the buckets opened in [:start, :end); the
-- columns of common/price_stats.sql. The closes are the buckets' last closes: mean and std are those of the
-- hourly (daily) closes, not of every 1m close.
WITH candles AS (
    SELECT bucket AS time, close
    FROM {aggregate}
    WHERE exchange = :exchange
      AND symbol = :symbol
      AND price = :price
      AND bucket >= CAST(:start AS timestamptz)
      AND bucket < CAST(:end AS timestamptz)
),
latest AS (
    SELECT time, close FROM candles ORDER BY time DESC LIMIT 1
)
SELECT count(*) AS count,
       avg(c.close) AS mean,
       stddev_samp(c.close) AS std,
       min(c.close) AS min,
       max(c.close) AS max,
       (SELECT close FROM latest) AS current,
       (SELECT time FROM latest) AS current_time
FROM candles c
