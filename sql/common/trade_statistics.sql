-- Statistics of closed bot trades closed in [:start, :end) (exit time, else entry time).
-- realized_pnl is before fees: net_pnl = gross profit - gross loss - fees. win_rate = wins / trades
-- (breakeven trades count as trades, not wins); profit_factor = gross profit / gross loss, NULL without losses.
WITH t AS (
    SELECT realized_pnl AS pnl, fees
    FROM bot_trades
    WHERE status = 'closed'
      AND realized_pnl IS NOT NULL
      AND coalesce(exit_time, entry_time) >= CAST(:start AS timestamptz)
      AND coalesce(exit_time, entry_time) < CAST(:end AS timestamptz)
      AND (CAST(:symbol AS text) IS NULL OR symbol = CAST(:symbol AS text))
      AND (CAST(:strategy AS text) IS NULL OR strategy = CAST(:strategy AS text))
      AND (CAST(:bot_id AS text) IS NULL OR bot_id = CAST(:bot_id AS text))
)
SELECT count(*) AS trades,
       count(*) FILTER (WHERE pnl > 0) AS wins,
       count(*) FILTER (WHERE pnl < 0) AS losses,
       count(*) FILTER (WHERE pnl = 0) AS breakeven,
       count(*) FILTER (WHERE pnl > 0)::float8 / nullif(count(*), 0) AS win_rate,
       coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) AS gross_profit,
       coalesce(-sum(pnl) FILTER (WHERE pnl < 0), 0) AS gross_loss,
       coalesce(sum(fees), 0) AS total_fees,
       coalesce(sum(pnl), 0) - coalesce(sum(fees), 0) AS net_pnl,
       avg(pnl) FILTER (WHERE pnl > 0) AS avg_win,
       avg(pnl) FILTER (WHERE pnl < 0) AS avg_loss,
       max(pnl) FILTER (WHERE pnl > 0) AS largest_win,
       min(pnl) FILTER (WHERE pnl < 0) AS largest_loss,
       (coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) / nullif(-sum(pnl) FILTER (WHERE pnl < 0), 0))::float8
           AS profit_factor
FROM t
