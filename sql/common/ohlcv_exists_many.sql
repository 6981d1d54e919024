-- Which of :symbols have stored candles of :interval and price kind :price with open time in [:start, :end) (ohlcv_exists.sql for
-- many series: decides, per series, whether get_ohlcv_frame reads stored candles or the aggregates).
SELECT s.symbol
FROM unnest(CAST(:symbols AS text[])) AS s(symbol)
WHERE EXISTS (
    SELECT 1 FROM ohlcv
    WHERE exchange = :exchange AND symbol = s.symbol AND interval = :interval AND price = :price
      AND time >= CAST(:start AS timestamptz) AND time < CAST(:end AS timestamptz)
)
