"""Equity curve and risk snapshots of a portfolio, from its fills (`trade_history`) and the latest prices.

A portfolio is a set of fills (one strategy's, optionally one sleeve's by correlation-id prefix) with an
initial capital; at each snapshot time t its cash is the capital plus the cash flows of the fills executed
before t (and, for a perpetual, the funding its positions paid or received at the funding times up to t, as
`backtest.with_funding` adds to the simulation), its positions are marked at the latest candle close known at
t (a bar's close is known at its open time + interval). This is computed from the warehouse, independently of the simulation that produced the
fills, so the two can be checked against each other.

Risk figures at t use the portfolio's per-snapshot returns (the first one against the initial capital), net
of the capital a series brings when it joins the book (time-weighted, so a deposit is not a gain):
historical VaR / CVaR at 95 % and 99 % are losses as positive fractions of the portfolio value over one
snapshot interval (VaR = -quantile(r, 1 - level), CVaR = -mean(r | r <= that quantile)); the Sharpe ratio is
annualized with 365 days a year; drawdown is from the running peak since inception. The daily loss limit is a
fraction of the equity at the start of the UTC day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.analytics.backtest import (
    Series,
    funding_payments,
    is_perpetual,
    max_drawdown,
    periods_per_year,
    read_funding,
    sharpe,
)
from market_warehouse.resources.analytics.features import read_candles
from market_warehouse.resources.analytics.store import SyncResult, sync_rows
from market_warehouse.resources.analytics.strategy import money
from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.models import EquityCurve, RiskMetric, TradeHistory

DAY = timedelta(days=1)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Portfolio:
    name: str
    strategy: str
    initial_capital: Decimal
    series: tuple[Series, ...]
    correlation_prefix: str | None = None  # a sleeve: only fills whose correlation id starts with this

    @property
    def step(self) -> timedelta:
        """Snapshot spacing: the shortest interval of its series."""
        return min(interval_to_timedelta(s.interval) for s in self.series)


@dataclass(frozen=True)
class RiskParams:
    lookback_days: int = 30  # returns used for VaR, CVaR and Sharpe
    daily_loss_limit: float = 0.05  # fraction of the day's opening equity
    min_observations: int = 2


def read_fills(conn: sa.Connection, pf: Portfolio, end: datetime) -> pd.DataFrame:
    """Fills of the portfolio executed before `end`, in execution order."""
    t = TradeHistory
    query = sa.select(
        t.id, t.exchange, t.symbol, t.side, t.quantity, t.price, t.fees, t.executed_at, t.correlation_id
    ).where(t.strategy == pf.strategy, t.executed_at < end, t.status == "filled")
    if pf.correlation_prefix:
        query = query.where(t.correlation_id.startswith(pf.correlation_prefix, autoescape=True))
    pairs = [(s.exchange, s.symbol) for s in pf.series]
    query = query.where(sa.tuple_(t.exchange, t.symbol).in_(pairs)).order_by(t.executed_at, t.id)
    cols = ["id", "exchange", "symbol", "side", "quantity", "price", "fees", "executed_at", "correlation_id"]
    frame = pd.DataFrame(conn.execute(query).all(), columns=cols)
    frame["executed_at"] = pd.to_datetime(frame["executed_at"], utc=True)
    return frame


def read_marks(conn: sa.Connection, pf: Portfolio, start: datetime, end: datetime) -> pd.DataFrame:
    """Closes known in [start, end) per series (by close time) plus the last one known before `start`."""
    frames = []
    for s in pf.series:
        step = interval_to_timedelta(s.interval)
        bars = read_candles(conn, (s.exchange, s.symbol, s.interval), start - step, end - step, warmup=1)
        frames.append(
            pd.DataFrame(
                {
                    "exchange": s.exchange,
                    "symbol": s.symbol,
                    "known_at": bars["time"] + step,
                    "close": bars["close"].astype("float64"),
                }
            )
        )
    marks = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return marks.sort_values("known_at", kind="stable").reset_index(drop=True) if len(marks) else marks


def read_funding_due(conn: sa.Connection, pf: Portfolio, fills: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """Funding events of the portfolio's perpetuals from its first fill to `end`, each with the price it is
    paid on: the exchange's mark price at funding, else the close of the last bar closed by then (the price
    the simulation marks the position at)."""
    columns = ["exchange", "symbol", "time", "rate", "mark_price", "step"]
    frames = []
    for s in pf.series:
        if fills.empty or not is_perpetual(s.symbol):
            continue
        first = fills["executed_at"].min().to_pydatetime()
        events = read_funding(conn, s.exchange, s.symbol, first, end)
        if events.empty:
            continue
        step = interval_to_timedelta(s.interval)
        bars = read_candles(conn, (s.exchange, s.symbol, s.interval), first, end, warmup=1)
        closes = pd.DataFrame({"time": bars["time"] + step, "close": bars["close"].astype("float64")})
        events = events.assign(time=pd.to_datetime(events["time"], utc=True))
        priced = pd.merge_asof(events, closes, on="time", direction="backward")
        priced["mark_price"] = priced["mark_price"].astype("float64").fillna(priced["close"])
        frames.append(priced.assign(exchange=s.exchange, symbol=s.symbol, step=step)[columns])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def funding_cash(fills: pd.DataFrame, funding: pd.DataFrame, t: pd.Timestamp) -> Decimal:
    """What the positions paid (negative) or received in funding at funding times up to `t`: the position
    at a funding time is the one held at the last bar close before it (fills before that close), as in the
    simulation; a short (negative position) receives what a long pays."""
    total = Decimal(0)
    due = funding[funding["time"] <= t] if len(funding) else funding
    for (exchange, symbol), events in due.groupby(["exchange", "symbol"], sort=False):
        mine = fills[(fills["exchange"] == exchange) & (fills["symbol"] == symbol)]
        signed = [q if side == "buy" else -q for q, side in zip(mine["quantity"], mine["side"], strict=True)]
        closes = events["time"].dt.floor(events["step"].iloc[0])
        held = [
            sum((q for q, at in zip(signed, mine["executed_at"], strict=True) if at < close), Decimal(0))
            for close in closes
        ]
        positions = pd.DataFrame({"time": events["time"], "quantity": held, "close": events["mark_price"]})
        total += sum(funding_payments(positions, events)["payment"], Decimal(0))
    return total


def snapshot_times(marks: pd.DataFrame, start: datetime, end: datetime) -> list[pd.Timestamp]:
    """Every time in [start, end) at which a new close becomes known."""
    if marks.empty:
        return []
    known = marks["known_at"]
    return sorted(set(known[(known >= pd.Timestamp(start)) & (known < pd.Timestamp(end))]))


@dataclass(frozen=True)
class Snapshot:
    time: pd.Timestamp
    cash: Decimal
    positions: dict[tuple[str, str], tuple[Decimal, Decimal]]  # (exchange, symbol) -> (qty, value)

    @property
    def positions_value(self) -> Decimal:
        return sum((v for _, v in self.positions.values()), Decimal(0))

    @property
    def equity(self) -> Decimal:
        return money(self.cash + self.positions_value)


def snapshot_at(
    fills: pd.DataFrame,
    marks: pd.DataFrame,
    t: pd.Timestamp,
    initial: Decimal,
    funding: pd.DataFrame | None = None,
) -> Snapshot:
    done = fills[fills["executed_at"] < t]
    cash = initial + (funding_cash(fills, funding, t) if funding is not None else Decimal(0))
    qty: dict[tuple[str, str], Decimal] = {}
    for f in done.itertuples(index=False):
        notional = f.quantity * f.price
        key = (f.exchange, f.symbol)
        if f.side == "buy":
            cash -= notional + f.fees
            qty[key] = qty.get(key, Decimal(0)) + f.quantity
        else:
            cash += notional - f.fees
            qty[key] = qty.get(key, Decimal(0)) - f.quantity
    positions = {}
    known = marks[marks["known_at"] <= t] if len(marks) else marks
    for key, amount in qty.items():
        if amount == 0:
            continue
        series_marks = known[(known["exchange"] == key[0]) & (known["symbol"] == key[1])]
        if series_marks.empty:
            raise ValueError(f"no price known for {key[0]} {key[1]} at {t.isoformat()} to value a position")
        price = Decimal(repr(float(series_marks["close"].iloc[-1])))
        positions[key] = (amount, amount * price)
    return Snapshot(t, cash, positions)


def equity_frame(
    pf: Portfolio,
    fills: pd.DataFrame,
    marks: pd.DataFrame,
    start: datetime,
    end: datetime,
    funding: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[Snapshot]]:
    """`equity_curve` rows of [start, end) and their snapshots (for the risk figures); `funding` (from
    `read_funding_due`) puts a perpetual's funding payments in the cash."""
    times = snapshot_times(marks, start, end)
    base = snapshot_at(fills, marks, pd.Timestamp(start), pf.initial_capital, funding).equity
    snaps = [snapshot_at(fills, marks, t, pf.initial_capital, funding) for t in times]
    rows = [
        {
            "portfolio": pf.name,
            "time": s.time,
            "equity": s.equity,
            "cash": money(s.cash),
            "buying_power": money(s.cash),  # spot, no leverage
            "positions_value": money(s.positions_value),
            "total_return": float(s.equity / pf.initial_capital - 1),
            "daily_return": float(s.equity / base - 1) if base else None,
        }
        for s in snaps
    ]
    columns = ["portfolio", "time", "equity", "cash", "buying_power", "positions_value"]
    return pd.DataFrame(rows, columns=[*columns, "total_return", "daily_return"]), snaps


def read_equity(conn: sa.Connection, portfolio: str, end: datetime) -> pd.DataFrame:
    """Stored equity (exact `Decimal`) of `portfolio` before `end`, by time, with the capital each snapshot
    was measured against (`equity / (1 + total_return)`, to the cent): a book's capital grows when a series
    joins it, and that deposit is not a return."""
    query = (
        sa.select(EquityCurve.time, EquityCurve.equity, EquityCurve.total_return)
        .where(EquityCurve.portfolio == portfolio, EquityCurve.time < end)
        .order_by(EquityCurve.time)
    )
    rows = conn.execute(query).all()
    index = pd.to_datetime([r[0] for r in rows], utc=True)
    capital = [  # unknown without a return, or when nothing is left (equity 0, return -1)
        None if r[2] is None or r[2] <= -1.0 else (r[1] / Decimal(repr(1.0 + r[2]))).quantize(CENT)
        for r in rows
    ]
    frame = pd.DataFrame({"equity": [r[1] for r in rows], "capital": capital}, index=index, dtype="object")
    frame["capital"] = frame["capital"].ffill().bfill()  # rows stored without a return: no deposit seen
    return frame


def time_weighted_returns(equity: pd.DataFrame, initial: Decimal) -> np.ndarray:
    """Per-snapshot returns net of deposits: r_t = (E_t - (C_t - C_t-1)) / E_t-1 - 1, the first against
    the first capital (or `initial` when nothing is stored)."""
    values = equity["equity"].to_numpy(dtype="float64")
    capital = equity["capital"].fillna(initial).to_numpy(dtype="float64")
    first = capital[0] if len(capital) else float(initial)
    flows = np.diff(np.concatenate([[first], capital]))
    previous = np.concatenate([[first], values[:-1]])
    return (values - flows) / previous - 1.0


def cumulative_returns(equity: pd.DataFrame, initial: Decimal) -> pd.Series:
    """Time-weighted return since the first snapshot, by time (`read_equity`'s frame): what the equity plot
    draws and what risk's drawdown is measured on, so the two pages agree."""
    growth = np.cumprod(1.0 + time_weighted_returns(equity, initial))
    return pd.Series(growth - 1.0, index=equity.index, dtype="float64")


def var_cvar(returns: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """Historical VaR and CVaR at `level` (e.g. 0.95) as positive loss fractions."""
    if len(returns) == 0:
        return None, None
    q = float(np.quantile(returns, 1.0 - level))
    tail = returns[returns <= q]
    return 0.0 - q, 0.0 - float(tail.mean())  # 0.0 - x: no "-0.0" when the quantile is 0


def risk_rows(
    pf: Portfolio,
    snaps: Sequence[Snapshot],
    equity: pd.Series,
    p: RiskParams,
    day_start: datetime,
) -> pd.DataFrame:
    """`risk_metrics` rows at each snapshot, from the equity history up to that snapshot; returns and
    drawdown are time-weighted (a series joining the book brings capital, not a gain)."""
    returns_all = time_weighted_returns(equity, pf.initial_capital)
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + returns_all)])
    ppy = periods_per_year(pf.step)
    before_day = equity[equity.index <= pd.Timestamp(day_start)]
    day_base = pf.initial_capital
    if len(before_day):  # the day starts from the last equity, plus any capital that joined since
        last = before_day.iloc[-1]
        day_base = last["equity"] + (pf.initial_capital - (last["capital"] or pf.initial_capital))
    rows = []
    for snap in snaps:
        upto = int(np.searchsorted(equity.index, snap.time, side="right"))
        if upto == 0 or equity.index[upto - 1] != snap.time:
            raise ValueError(
                f"{pf.name}: no stored equity at {snap.time.isoformat()}; materialize equity first"
            )
        window_start = snap.time - timedelta(days=p.lookback_days)
        first = int(np.searchsorted(equity.index, window_start, side="right"))
        returns = returns_all[first:upto]
        enough = len(returns) >= p.min_observations
        var95, cvar95 = var_cvar(returns, 0.95) if enough else (None, None)
        var99, cvar99 = var_cvar(returns, 0.99) if enough else (None, None)
        values_abs = [abs(v) for _, v in snap.positions.values()]
        daily_pnl = snap.equity - money(day_base)
        limit = money(money(day_base) * Decimal(str(p.daily_loss_limit)))
        rows.append(
            {
                "portfolio": pf.name,
                "time": snap.time,
                "open_positions": len(snap.positions),
                "gross_exposure": money(sum(values_abs, Decimal(0))),
                "net_exposure": money(snap.positions_value),
                "largest_position": money(max(values_abs, default=Decimal(0))),
                "portfolio_value": snap.equity,
                "daily_pnl": daily_pnl,
                "total_pnl": snap.equity - money(pf.initial_capital),
                "max_drawdown": max_drawdown(wealth[: upto + 1]),
                "sharpe_ratio": sharpe(returns, ppy) if enough else None,
                "var_95": var95,
                "var_99": var99,
                "cvar_95": cvar95,
                "cvar_99": cvar99,
                "daily_loss_limit": limit,
                "daily_loss_limit_breached": bool(daily_pnl < -limit),
            }
        )
    return pd.DataFrame(rows)


def equity_for_window(
    conn: sa.Connection, pf: Portfolio, start: datetime, end: datetime
) -> tuple[pd.DataFrame, list[Snapshot], int]:
    """Equity rows of [start, end) from the warehouse, the snapshots, and the input rows read."""
    fills = read_fills(conn, pf, end)
    marks = read_marks(conn, pf, start, end)
    funding = read_funding_due(conn, pf, fills, end)
    frame, snaps = equity_frame(pf, fills, marks, start, end, funding)
    return frame, snaps, len(fills) + len(marks) + len(funding)


def risk_for_window(
    conn: sa.Connection, pf: Portfolio, start: datetime, end: datetime, p: RiskParams
) -> tuple[pd.DataFrame, int]:
    """Risk rows of [start, end): positions from fills and prices, returns from the stored equity curve."""
    _, snaps, rows_in = equity_for_window(conn, pf, start, end)
    equity = read_equity(conn, pf.name, end)
    return risk_rows(pf, snaps, equity, p, start), rows_in + len(equity)


def _write_snapshots(
    conn: sa.Connection, table: sa.Table, pf: Portfolio, frame: pd.DataFrame, start, end, run_id
) -> SyncResult:
    rows = [
        {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    result, _ = sync_rows(
        conn,
        table,
        scope=[table.c.portfolio == pf.name, table.c.time >= start, table.c.time < end],
        key=["time"],
        rows=rows,
        stamp={"run_id": run_id},
    )
    return result


def write_equity(
    conn: sa.Connection, pf: Portfolio, frame: pd.DataFrame, start, end, run_id=None
) -> SyncResult:
    """Store the equity rows of [start, end); unchanged rows keep the run id that produced them."""
    return _write_snapshots(conn, EquityCurve.__table__, pf, frame, start, end, run_id)


def write_risk(
    conn: sa.Connection, pf: Portfolio, frame: pd.DataFrame, start, end, run_id=None
) -> SyncResult:
    return _write_snapshots(conn, RiskMetric.__table__, pf, frame, start, end, run_id)
