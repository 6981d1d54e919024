-- get_market_trades_frame.sql with at most :limit trades per symbol (the first ones in time order).
SELECT t.symbol, t.trade_id, t.time, t.price, t.amount, t.cost, t.side, t.is_buyer_maker
FROM unnest(CAST(:symbols AS text[])) AS s(symbol)
CROSS JOIN LATERAL (
    SELECT *
    FROM market_trades
    WHERE exchange = :exchange
      AND symbol = s.symbol
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
    ORDER BY time, trade_id
    LIMIT :limit
) AS t
ORDER BY t.symbol, t.time, t.trade_id
