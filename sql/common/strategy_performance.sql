-- Per strategy: signals issued, executed, closed (with a realized PnL), wins/losses and PnL figures over
-- the signals issued in [:start, :end). win_rate = wins / closed; PnL aggregates are numeric (exact).
SELECT strategy,
       count(*) AS signals,
       count(*) FILTER (WHERE executed) AS executed,
       count(realized_pnl) AS closed,
       count(*) FILTER (WHERE realized_pnl > 0) AS wins,
       count(*) FILTER (WHERE realized_pnl < 0) AS losses,
       count(*) FILTER (WHERE realized_pnl > 0)::float8 / nullif(count(realized_pnl), 0) AS win_rate,
       avg(realized_pnl) AS avg_pnl,
       sum(realized_pnl) AS total_pnl,
       max(realized_pnl) AS best_pnl,
       min(realized_pnl) AS worst_pnl
FROM trading_signals
WHERE time >= CAST(:start AS timestamptz)
  AND time < CAST(:end AS timestamptz)
  AND (CAST(:strategy AS text) IS NULL OR strategy = CAST(:strategy AS text))
  AND (CAST(:symbol AS text) IS NULL OR symbol = CAST(:symbol AS text))
GROUP BY strategy
ORDER BY strategy
