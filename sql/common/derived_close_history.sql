-- Candle closes of one series in [start, end): the actuals drawn under the forecasts (traded prices).
SELECT time, close
FROM ohlcv
WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval AND price = 'trade'
  AND time >= :start AND time < :end
ORDER BY time
