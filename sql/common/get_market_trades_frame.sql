-- Tape trades of one or many symbols of an exchange with time in [:start, :end), ordered by symbol, time and
-- trade id: the frame reads of the storage API (get_market_trades_frame), read as Arrow through ADBC. The
-- exchange is the caller's constant (added by the reader, not sent per row).
SELECT symbol, trade_id, time, price, amount, cost, side, is_buyer_maker
FROM market_trades
WHERE exchange = :exchange
  AND symbol = ANY(CAST(:symbols AS text[]))
  AND time >= CAST(:start AS timestamptz)
  AND time < CAST(:end AS timestamptz)
ORDER BY symbol, time, trade_id
LIMIT :limit
