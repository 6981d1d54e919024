"""Equity and risk: VaR/CVaR against numpy, the equity curve rebuilt from stored fills equals the
simulation's, and the risk figures of a sleeve equal its backtest's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from market_warehouse.resources.analytics.backtest import Series, performance, write_day
from market_warehouse.resources.analytics.risk import (
    Portfolio,
    RiskParams,
    Snapshot,
    equity_for_window,
    read_equity,
    risk_for_window,
    risk_rows,
    var_cvar,
    write_equity,
    write_risk,
)
from market_warehouse.resources.analytics.strategy import StrategyParams, money, simulate
from market_warehouse.resources.models import EquityCurve
from tests.analytics_data import random_walk_candles, store_candles

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def test_var_cvar_against_numpy():
    rng = np.random.default_rng(1)
    r = rng.standard_t(4, 1000) * 0.01
    for level in (0.95, 0.99):
        var, cvar = var_cvar(r, level)
        q = np.quantile(r, 1 - level)
        assert var == pytest.approx(-q)
        ordered = np.sort(r)
        assert cvar == pytest.approx(-ordered[: np.searchsorted(ordered, q, side="right")].mean())
        assert cvar >= var > 0
    small = np.array([-0.03, -0.01, 0.0, 0.02, 0.01])
    var, cvar = var_cvar(small, 0.95)
    # numpy's linear quantile at 5 %: -0.03 + 0.2 * (0.02) = -0.026; tail = [-0.03]
    assert var == pytest.approx(0.026) and cvar == pytest.approx(0.03)


@pytest.fixture
def book(any_engine):
    """Two series traded by the strategy for three days, written day by day as the assets do."""
    engine = any_engine
    p = StrategyParams(fast=4, slow=12, stop_loss=0.015, take_profit=0.02)
    series = [Series("synthetic", "BTC/USDT", "1h"), Series("synthetic", "ETH/USDT", "1h")]
    sims = {}
    for seed, s in enumerate(series):
        candles = random_walk_candles(24 * 3, seed=20 + seed, price=2000.0 * (seed + 1), start=T0)
        store_candles(engine, candles, symbol=s.symbol)
        sims[s] = simulate(candles, HOUR, p, s.book_id(p))
        with engine.begin() as conn:
            for d in range(3):
                write_day(conn, sims[s], s, p, T0 + d * DAY, T0 + (d + 1) * DAY)
    return p, series, sims


def _materialize(engine, pf, params=RiskParams()):
    out_e, out_r = [], []
    for d in range(3):
        start, end = T0 + d * DAY, T0 + (d + 1) * DAY
        with engine.begin() as conn:
            eq, _, _ = equity_for_window(conn, pf, start, end)
            assert write_equity(conn, pf, eq, start, end, "run-1").inserted == len(eq)
        with engine.begin() as conn:
            risk, _ = risk_for_window(conn, pf, start, end, params)
            assert write_risk(conn, pf, risk, start, end, "run-1").inserted == len(risk)
        with engine.begin() as conn:  # a re-run writes nothing
            assert write_equity(conn, pf, eq, start, end, "run-2").written == 0
            assert write_risk(conn, pf, risk, start, end, "run-2").written == 0
        out_e.append(eq)
        out_r.append(risk)
    return pd.concat(out_e, ignore_index=True), pd.concat(out_r, ignore_index=True)


def test_sleeve_equity_and_risk_match_the_backtest(any_engine, book):
    engine = any_engine
    p, series, sims = book
    s = series[0]
    sim = sims[s]
    pf = Portfolio(
        s.book_id(p), p.name, money(p.initial_capital), (s,), correlation_prefix=s.book_id(p) + ":"
    )
    equity, risk = _materialize(engine, pf, RiskParams(lookback_days=30))
    # Snapshots at every bar close from 01:00 on day 1 (the 00:00 close of day 3 belongs to day 4).
    sim_eq = pd.DataFrame(sim.equity).set_index("time")
    assert len(equity) == 3 * 24 - 1
    for row in equity.itertuples():
        assert row.equity == sim_eq.loc[row.time, "equity"], row.time
    perf = performance(sim, p, HOUR)
    last = risk.iloc[-1]
    # the backtest also counts the last bar (closing at the start of day 4)
    perf_upto = performance(_truncate(sim, len(equity)), p, HOUR)
    assert last["sharpe_ratio"] == pytest.approx(perf_upto.sharpe_ratio)
    assert last["max_drawdown"] == pytest.approx(perf_upto.max_drawdown)
    assert last["total_pnl"] == last["portfolio_value"] - Decimal("10000")
    assert perf.trades > 0
    # Daily PnL is against the equity at the start of each UTC day.
    day2 = equity[(equity["time"] >= T0 + DAY) & (equity["time"] < T0 + 2 * DAY)]
    base = equity[equity["time"] == T0 + DAY]["equity"].iloc[0]
    risk2 = risk.set_index("time").loc[day2["time"]]
    assert list(risk2["daily_pnl"]) == [e - base for e in day2["equity"]]
    # VaR from the stored equity curve equals numpy on the same returns
    values = np.array([10_000.0] + [float(e) for e in equity["equity"]])
    r = values[1:] / values[:-1] - 1
    assert last["var_95"] == pytest.approx(-np.quantile(r, 0.05))
    assert last["cvar_99"] == pytest.approx(-r[r <= np.quantile(r, 0.01)].mean())


def _truncate(sim, n):
    from market_warehouse.resources.analytics.strategy import Simulation

    cut = sim.equity[:n]
    end = cut[-1]["time"]
    trades = [t for t in sim.trades if t["exit_time"] < end]
    fills = [f for f in sim.fills if f["executed_at"] < end]
    return Simulation(sim.signals, fills, trades, cut, None)


def test_book_exposure_and_loss_limit(any_engine, book):
    engine = any_engine
    p, series, sims = book
    pf = Portfolio(p.name, p.name, money(p.initial_capital) * 2, tuple(series))
    equity, risk = _materialize(engine, pf, RiskParams(daily_loss_limit=0.001))
    sleeves = {s: pd.DataFrame(sims[s].equity).set_index("time") for s in series}
    for row in equity.itertuples():
        # each sleeve's equity is rounded to the money scale on its own: at most 1e-10 apart each
        assert abs(row.equity - sum(sleeves[s].loc[row.time, "equity"] for s in series)) <= Decimal("2e-10")
    risk = risk.set_index("time")
    held = {t: sum(sleeves[s].loc[t, "quantity"] > 0 for s in series) for t in risk.index}
    assert (risk["open_positions"] == pd.Series(held)).all()
    assert risk["open_positions"].max() >= 1
    both = risk[risk["open_positions"] == 2]
    for t, row in both.iterrows():
        values = [
            sleeves[s].loc[t, "quantity"] * Decimal(repr(float(sleeves[s].loc[t, "close"]))) for s in series
        ]
        assert row["gross_exposure"] == money(sum(values))
        assert row["largest_position"] == money(max(values))
    breached = risk["daily_pnl"] < -risk["daily_loss_limit"]
    assert (risk["daily_loss_limit_breached"] == breached).all()
    assert breached.any() and not breached.all()


def test_a_series_joining_the_book_is_a_deposit_not_a_return(engine):
    """A book's capital is that of the series it trades so far: when one joins (the demo's NYSE series on the
    first session after a weekend), the stored equity jumps by its capital. Risk must see the deposit as
    capital, not as a +100 % hour: returns, Sharpe, VaR, drawdown and the day's PnL are time-weighted."""
    old = Series("synthetic", "BTC/USDT", "1h")
    # Day 1: one series (capital 10,000) falls 0.1 % an hour. Day 2 at 12:00 a second series joins with its
    # 10,000 in cash and stays flat; the first keeps falling.
    growth = [(1 - 0.001) ** (h + 1) for h in range(48)]
    rows = []
    for h in range(48):
        joined = h >= 36
        equity = money(10_000 * growth[h] + (10_000 if joined else 0))
        capital = Decimal(20_000 if joined else 10_000)
        rows.append((T0 + (h + 1) * HOUR, equity, float(equity / capital - 1)))
    with engine.begin() as conn:
        conn.execute(
            EquityCurve.__table__.insert(),
            [{"portfolio": "book", "time": t, "equity": e, "total_return": r} for t, e, r in rows],
        )
        pf = Portfolio("book", "s", Decimal(20_000), (old, Series("synthetic", "ETH/USDT", "1h")))
        stored = read_equity(conn, "book", T0 + 3 * DAY)
    assert list(stored["capital"]) == [Decimal(10_000)] * 36 + [Decimal(20_000)] * 12
    day2 = [Snapshot(pd.Timestamp(t), e, {}) for t, e, _ in rows if t >= T0 + DAY]
    risk = risk_rows(pf, day2, stored, RiskParams(daily_loss_limit=0.02), T0 + DAY).set_index("time")

    # Every hour lost money (the joiner is flat): no return is positive, nothing was "gained".
    last = risk.iloc[-1]
    assert last["sharpe_ratio"] < 0 and last["var_95"] > 0
    # The drawdown is the first series' fall, diluted by the flat joiner after 12:00, never a 50 % one.
    # (the hour it joins, its 10,000 is the deposit: that hour's return is the first series' alone)
    tw = np.cumprod(
        [1 - 0.001] * 37
        + [(10_000 * growth[h] + 10_000) / (10_000 * growth[h - 1] + 10_000) for h in range(37, 48)]
    )
    assert last["max_drawdown"] == pytest.approx(1 - tw[-1], rel=1e-9)
    assert last["max_drawdown"] < 0.05
    # The day's PnL is against the day's opening equity plus the capital that joined: a small loss, not
    # +10,000, and the 2 % loss limit is not breached by a deposit's accounting.
    opening, last_equity = rows[23][1], rows[-1][1]
    assert last["daily_pnl"] == last_equity - (opening + Decimal(10_000))
    assert Decimal(-300) < last["daily_pnl"] < 0 and not last["daily_loss_limit_breached"]
    assert last["total_pnl"] == last_equity - Decimal(20_000)
