"""Backtest of the reference strategy: performance figures and the rows it leaves in the warehouse.

The strategy is replayed from a fixed start (the book's inception) up to the end of each partition, so the
rows of day D (signals, fills, round trips closed that day) are the same whichever later day is replayed;
a partition writes only its own day's rows, and a `backtest_results` row "from inception to end of D".

Ratios use per-bar returns of the equity marked at each bar close, annualized with 365 days a year (24/7
crypto markets), risk-free rate 0; Sortino's downside deviation is sqrt(mean(min(r, 0)^2)) over all bars.
Max drawdown is a positive fraction of the running peak.

A perpetual's equity also carries its funding (`with_funding`): at each funding time the position held
then pays (long, positive rate) or receives position × mark price × rate, so a strategy that holds a
perpetual through funding times is not credited with the carry it would have paid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.analytics.store import SyncResult, sync_rows
from market_warehouse.resources.analytics.strategy import Simulation, StrategyParams, money
from market_warehouse.resources.models import (
    BacktestResult,
    BotTrade,
    FundingRate,
    TradeHistory,
    TradingSignal,
)

YEAR = timedelta(days=365)


@dataclass(frozen=True)
class Performance:
    initial_capital: Decimal
    final_equity: Decimal
    total_return: float
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float
    win_rate: float | None
    profit_factor: float | None
    trades: int
    fees_paid: Decimal
    total_pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor_before_fees: float | None


def periods_per_year(step: timedelta) -> float:
    return YEAR / step


def equity_returns(equity: pd.Series, initial: float) -> np.ndarray:
    """Per-bar simple returns, the first one against the initial capital."""
    values = np.concatenate([[initial], np.asarray(equity, dtype="float64")])
    return values[1:] / values[:-1] - 1.0


def sharpe(returns: np.ndarray, ppy: float) -> float | None:
    if len(returns) < 2:
        return None
    sd = np.std(returns, ddof=1)
    return None if sd == 0 else float(np.mean(returns) / sd * math.sqrt(ppy))


def sortino(returns: np.ndarray, ppy: float) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    return None if downside == 0 else float(np.mean(returns) / downside * math.sqrt(ppy))


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction of that peak."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks))


def performance(sim: Simulation, p: StrategyParams, step: timedelta) -> Performance:
    initial = money(p.initial_capital)
    equity = pd.Series([row["equity"] for row in sim.equity], dtype="float64")
    final = sim.equity[-1]["equity"] if sim.equity else initial
    returns = equity_returns(equity, float(initial))
    pnls = [t["realized_pnl"] for t in sim.trades]
    wins = [x for x in pnls if x > 0]
    losses = [x for x in pnls if x < 0]
    gross_profit, gross_loss = sum(wins, Decimal(0)), sum(losses, Decimal(0))
    return Performance(
        initial_capital=initial,
        final_equity=final,
        total_return=float(final / initial - 1),
        sharpe_ratio=sharpe(returns, periods_per_year(step)),
        sortino_ratio=sortino(returns, periods_per_year(step)),
        max_drawdown=max_drawdown(np.concatenate([[float(initial)], equity.to_numpy()])),
        win_rate=len(wins) / len(pnls) if pnls else None,
        profit_factor=_profit_factor(pnls),
        trades=len(pnls),
        fees_paid=sum((f["fees"] for f in sim.fills), Decimal(0)),
        total_pnl=sum(pnls, Decimal(0)),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor_before_fees=_profit_factor([t["gross_pnl"] for t in sim.trades]),
    )


def _profit_factor(pnls: list[Decimal]) -> float | None:
    loss = -sum((x for x in pnls if x < 0), Decimal(0))
    return float(sum((x for x in pnls if x > 0), Decimal(0)) / loss) if loss else None


def is_perpetual(symbol: str) -> bool:
    """A ccxt unified symbol with a settle currency and no expiry (`BTC/USDT:USDT`) is a perpetual swap."""
    settle = symbol.partition(":")[2]
    return bool(settle) and "-" not in settle


def funding_payments(equity: pd.DataFrame, funding: pd.DataFrame, side: int = 1) -> pd.DataFrame:
    """What a position paid (negative) or received at each funding time it was held through.

    `equity` is the simulation's marks (time = bar close, quantity held after that bar, close); the
    position at a funding time is the one of the last mark at or before it (held into the funding
    instant). `funding` has time, rate and mark_price (the bar close stands in where the exchange gave no
    mark price). Longs (`side` 1) pay a positive rate, shorts (-1) receive it: payment = −side × quantity
    × mark price × rate.
    """
    columns = ["time", "quantity", "mark_price", "rate", "payment"]
    if equity.empty or funding.empty:
        return pd.DataFrame(columns=columns)
    marks = equity[["time", "quantity", "close"]].assign(time=lambda f: pd.to_datetime(f["time"], utc=True))
    events = funding[["time", "rate", "mark_price"]].assign(
        time=lambda f: pd.to_datetime(f["time"], utc=True)
    )
    held = pd.merge_asof(
        events.sort_values("time"), marks.sort_values("time"), on="time", direction="backward"
    )
    held = held[held["quantity"].notna() & (held["quantity"] != 0)]
    price = held["mark_price"].astype("float64").fillna(held["close"].astype("float64"))
    payment = [
        money(-side * float(q) * px * float(r))
        for q, px, r in zip(held["quantity"], price, held["rate"], strict=True)
    ]
    return pd.DataFrame(
        {"time": held["time"], "quantity": held["quantity"], "mark_price": price, "rate": held["rate"],
         "payment": payment},
        columns=columns,
    ).reset_index(drop=True)  # fmt: skip


def with_funding(sim: Simulation, funding: pd.DataFrame, side: int = 1) -> Simulation:
    """`sim` with its cash and equity marks including the funding paid or received up to each mark."""
    payments = funding_payments(pd.DataFrame(sim.equity), funding, side)
    if payments.empty:
        return sim
    times = pd.DatetimeIndex(pd.to_datetime(payments["time"], utc=True))
    paid_so_far = [Decimal(0), *itertools.accumulate(payments["payment"])]
    equity = []
    for mark in sim.equity:
        # Funding at or before the mark's time is in it: a funding at a bar's close is paid on that mark's
        # position (held into that instant).
        paid = paid_so_far[int(times.searchsorted(pd.Timestamp(mark["time"]), side="right"))]
        equity.append(
            {**mark, "cash": mark["cash"] + paid, "equity": money(mark["equity"] + paid), "funding": paid}
        )
    return Simulation(sim.signals, sim.fills, sim.trades, equity, sim.open_position)


def read_funding(
    conn: sa.Connection, exchange: str, symbol: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """Stored funding events of one perpetual in `[start, end)` (time, rate, mark_price)."""
    f = FundingRate
    rows = conn.execute(
        sa.select(f.time, f.rate, f.mark_price)
        .where(f.exchange == exchange, f.symbol == symbol, f.time >= start, f.time < end)
        .order_by(f.time)
    ).all()
    return pd.DataFrame(rows, columns=["time", "rate", "mark_price"])


@dataclass(frozen=True)
class Series:
    exchange: str
    symbol: str
    interval: str

    def book_id(self, p: StrategyParams) -> str:
        """The sleeve of the book trading this series; prefix of its correlation ids."""
        return f"{p.name}:{self.exchange}:{self.symbol}:{self.interval}"


def _in(frame_time: Any, start: datetime, end: datetime) -> bool:
    return start <= frame_time < end


def signal_rows(sim: Simulation, s: Series, p: StrategyParams, start, end) -> list[dict[str, Any]]:
    rows = []
    for sig in sim.signals:
        if not _in(sig["time"], start, end):
            continue
        is_buy = sig["signal_type"] == "buy"
        rows.append(
            {
                "time": sig["time"].to_pydatetime(),
                "strategy": p.name,
                "symbol": s.symbol,
                "exchange": s.exchange,
                "interval": s.interval,
                "signal_type": sig["signal_type"],
                "strength": sig["strength"],
                "entry_price": sig["entry_price"],
                "target_price": sig["target_price"],
                "stop_loss": sig["stop_loss"],
                "expected_return": p.take_profit if is_buy else None,
                "risk_reward_ratio": p.take_profit / p.stop_loss if is_buy and p.stop_loss else None,
                "executed": sig["executed"],
                "executed_at": sig["executed_at"].to_pydatetime() if sig["executed_at"] is not None else None,
                "execution_price": sig["execution_price"],
                "exit_price": sig["exit_price"],
                "realized_pnl": sig["realized_pnl"],
                "indicators": sig["indicators"],
                "metadata_": {"reason": sig["reason"], "correlation_id": sig.get("correlation_id")},
            }
        )
    return rows


def fill_rows(
    sim: Simulation, s: Series, p: StrategyParams, start, end, signal_ids: dict[tuple, int]
) -> list[dict[str, Any]]:
    quote = s.symbol.split("/")[1].split(":")[0] if "/" in s.symbol else None
    rows = []
    for fill in sim.fills:
        if not _in(fill["executed_at"], start, end):
            continue
        signal_key = (fill["signal_time"].to_pydatetime(), fill["signal_type"])
        rows.append(
            {
                "correlation_id": fill["correlation_id"],
                "signal_id": signal_ids.get(signal_key),
                "strategy": p.name,
                "symbol": s.symbol,
                "exchange": s.exchange,
                "side": fill["side"],
                "order_type": fill["order_type"],
                "quantity": fill["quantity"],
                "price": fill["price"],
                "fees": fill["fees"],
                "fee_currency": quote,
                "status": "filled",
                "executed_at": fill["executed_at"].to_pydatetime(),
                "realized_pnl": fill["realized_pnl"],
                "signal": {
                    "time": fill["signal_time"].isoformat(),
                    "type": fill["signal_type"],
                    "reason": fill["reason"],
                },
                "execution": {
                    "simulated": True,
                    "interval": s.interval,
                    "fee_rate": p.fee_rate,
                    "slippage_bps": p.slippage_bps if fill["order_type"] != "limit" else 0.0,
                },
            }
        )
    return rows


def round_trip_rows(sim: Simulation, s: Series, p: StrategyParams, start, end) -> list[dict[str, Any]]:
    rows = []
    for t in sim.trades:
        if not _in(t["exit_time"], start, end):
            continue
        rows.append(
            {
                "bot_id": s.book_id(p),
                "strategy": p.name,
                "symbol": s.symbol,
                "exchange": s.exchange,
                "side": "long",
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "quantity": t["quantity"],
                # seed 004 keeps realized_pnl before fees (net = realized_pnl - fees)
                "realized_pnl": t["gross_pnl"],
                "realized_pnl_pct": t["gross_pnl_pct"],
                "fees": t["fees"],
                "status": "closed",
                "entry_time": t["entry_time"].to_pydatetime(),
                "exit_time": t["exit_time"].to_pydatetime(),
                "exit_reason": t["exit_reason"],
                "metadata_": {"correlation_id": t["correlation_id"], "simulated": True},
            }
        )
    return rows


def _orm_to_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`metadata_` is the attribute; the column is `metadata`."""
    return [{("metadata" if k == "metadata_" else k): v for k, v in r.items()} for r in rows]


def write_signals(
    conn: sa.Connection, sim: Simulation, s: Series, p: StrategyParams, start: datetime, end: datetime
) -> SyncResult:
    """Make the stored signals of one series in [start, end) equal to the replay's, idempotently."""
    result, _ = sync_rows(
        conn,
        TradingSignal.__table__,
        scope=_signals_of(s, p, start, end),
        key=["time", "signal_type"],
        rows=_orm_to_columns(signal_rows(sim, s, p, start, end)),
    )
    return result


def stored_signal_ids(
    conn: sa.Connection, s: Series, p: StrategyParams, start: datetime, end: datetime
) -> dict[tuple, int]:
    """Ids of the stored signals by (time, signal_type): fills point to the signal they executed."""
    t = TradingSignal
    query = sa.select(t.time, t.signal_type, t.id).where(*_signals_of(s, p, start, end))
    return {(row.time, row.signal_type): int(row.id) for row in conn.execute(query)}


def _signals_of(s: Series, p: StrategyParams, start: datetime, end: datetime) -> list[sa.ColumnElement[bool]]:
    """The stored signals of the strategy on one series in [start, end): what a day's replay owns."""
    c = TradingSignal.__table__.c
    return [
        c.strategy == p.name,
        c.exchange == s.exchange,
        c.symbol == s.symbol,
        c.interval == s.interval,
        c.time >= start,
        c.time < end,
    ]


def write_executions(
    conn: sa.Connection, sim: Simulation, s: Series, p: StrategyParams, start: datetime, end: datetime
) -> dict[str, SyncResult]:
    """Fills (`trade_history`) and round trips closed (`bot_trades`) of [start, end), idempotently.

    A fill is stamped at or after its signal, and a signal's fill is in the same day, so the signals of
    [start, end) are enough to link every fill of the day (signals must be written first)."""
    signal_ids = stored_signal_ids(conn, s, p, start, end)
    fills = TradeHistory.__table__
    fill_result, _ = sync_rows(
        conn,
        fills,
        scope=[
            fills.c.strategy == p.name,
            fills.c.exchange == s.exchange,
            fills.c.symbol == s.symbol,
            fills.c.correlation_id.startswith(s.book_id(p) + ":", autoescape=True),
            fills.c.executed_at >= start,
            fills.c.executed_at < end,
        ],
        key=["correlation_id", "side"],
        rows=fill_rows(sim, s, p, start, end, signal_ids),
    )
    trips = BotTrade.__table__
    trip_result, _ = sync_rows(
        conn,
        trips,
        scope=[
            trips.c.bot_id == s.book_id(p),
            trips.c.exchange == s.exchange,
            trips.c.symbol == s.symbol,
            trips.c.exit_time >= start,
            trips.c.exit_time < end,
        ],
        key=["entry_time"],
        rows=_orm_to_columns(round_trip_rows(sim, s, p, start, end)),
    )
    return {"trade_history": fill_result, "bot_trades": trip_result}


def write_day(
    conn: sa.Connection, sim: Simulation, s: Series, p: StrategyParams, start: datetime, end: datetime
) -> dict[str, SyncResult]:
    """Signals, then fills and round trips of [start, end) of one series."""
    return {"trading_signals": write_signals(conn, sim, s, p, start, end)} | write_executions(
        conn, sim, s, p, start, end
    )


def write_result(
    conn: sa.Connection,
    perf: Performance,
    s: Series,
    p: StrategyParams,
    start_time: datetime,
    end_time: datetime,
    run_id: str | None,
) -> tuple[SyncResult, int]:
    """The `backtest_results` row of this series from `start_time` (first bar) to `end_time`."""
    table = BacktestResult.__table__
    params = p.describe()
    row = {
        "strategy": p.name,
        "params": params,
        "symbol": s.symbol,
        "exchange": s.exchange,
        "interval": s.interval,
        "start_time": start_time,
        "end_time": end_time,
        "initial_capital": perf.initial_capital,
        "final_equity": perf.final_equity,
        "total_return": perf.total_return,
        "sharpe_ratio": perf.sharpe_ratio,
        "sortino_ratio": perf.sortino_ratio,
        "max_drawdown": perf.max_drawdown,
        "win_rate": perf.win_rate,
        "profit_factor": perf.profit_factor,
        "trades": perf.trades,
        "fees_paid": perf.fees_paid,
    }
    result, ids = sync_rows(
        conn,
        table,
        scope=[
            table.c.strategy == p.name,
            table.c.exchange == s.exchange,
            table.c.symbol == s.symbol,
            table.c.interval == s.interval,
            table.c.end_time == end_time,
            table.c.params == sa.type_coerce(params, table.c.params.type),
        ],
        key=["start_time"],
        rows=[row],
        stamp={"run_id": run_id},  # the run that last changed the figures
    )
    return result, next(iter(ids.values()))
