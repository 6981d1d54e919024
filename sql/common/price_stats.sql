-- Close-price statistics of one series over the candles opened in [:start, :end).
-- std is the sample standard deviation (ddof = 1, as pandas); current is the close of the latest candle.
WITH candles AS (
    SELECT time, close
    FROM ohlcv
    WHERE exchange = :exchange
      AND symbol = :symbol
      AND interval = :interval
      AND price = :price
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
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
