"""Reference strategy and backtest: known trades on a hand-made path, ratios against numpy, idempotent
writes, and the storage API's strategy performance / trade statistics agreeing with the backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.analytics.backtest import Series, performance, write_day, write_result
from market_warehouse.resources.analytics.strategy import StrategyParams, money, simulate
from market_warehouse.resources.models import BacktestResult, BotTrade, TradeHistory, TradingSignal
from market_warehouse.resources.warehouse.api import Warehouse
from tests.analytics_data import random_walk_candles

HOUR = timedelta(hours=1)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SERIES = Series("synthetic", "BTC/USDT", "1h")
TINY = StrategyParams(fast=2, slow=3, stop_loss=0.05, take_profit=0.10, fee_rate=0.001, slippage_bps=0)


def tiny_path() -> pd.DataFrame:
    """Crossovers up at bars 3, 11, 18 and down at 7, 14, 21 (SMA 2 vs SMA 3 of these closes)."""
    closes = [10, 10, 10, 11, 12, 13, 12, 11, 10, 10, 10, 10.5, 11, 11.2, 10.4, 10, 10, 10, 10.4, 10.8, 11.0]
    closes += [10.6, 10.2, 10.0, 10.0]
    opens = [10.0, *closes[:-1]]
    frame = pd.DataFrame(
        {
            "time": pd.date_range(T0, periods=len(closes), freq="h", tz="UTC"),
            "open": opens,
            "high": np.maximum(opens, closes),
            "low": np.minimum(opens, closes),
            "close": closes,
            "volume": 1.0,
        }
    )
    frame.loc[13, "low"] = 10.6  # a dip that stays above the second trade's stop (10.5 * 0.95)
    frame.loc[14, "low"] = 9.9  # ... and one that hits it
    return frame


def _qty(cash: Decimal, price: Decimal) -> Decimal:
    return (cash / (price * Decimal("1.001"))).quantize(Decimal("1e-8"), rounding=ROUND_DOWN)


def test_known_trades_on_a_tiny_path():
    sim = simulate(tiny_path(), HOUR, TINY, "t")
    trades = sim.frames()["trades"]
    fee = Decimal("0.001")
    cash = Decimal(10_000)
    expected = []
    # 1: cross up at bar 3 -> buy at bar 4's open (11); bar 5 reaches the 12.1 target.
    # 2: cross up at bar 11 -> buy at 10.5 (bar 12); bar 14 dips to 9.9 < stop 9.975.
    # 3: cross up at bar 18 -> buy at 10.4 (bar 19); cross down at bar 21 -> sell at bar 22's open (10.6).
    for entry_bar, entry, exit_bar, exit_, reason in [
        (4, Decimal(11), 5, Decimal("12.1"), "take_profit"),
        (12, Decimal("10.5"), 14, Decimal("9.975"), "stop_loss"),
        (19, Decimal("10.4"), 22, Decimal("10.6"), "crossover"),
    ]:
        qty = _qty(cash, entry)
        fees = money(qty * entry * fee) + money(qty * exit_ * fee)
        pnl = money(qty * (exit_ - entry)) - fees
        cash = cash - qty * entry - money(qty * entry * fee) + qty * exit_ - money(qty * exit_ * fee)
        expected.append((T0 + entry_bar * HOUR, T0 + exit_bar * HOUR, entry, exit_, qty, fees, pnl, reason))
    got = [
        (
            r.entry_time,
            r.exit_time,
            r.entry_price,
            r.exit_price,
            r.quantity,
            r.fees,
            r.realized_pnl,
            r.exit_reason,
        )
        for r in trades.itertuples()
    ]
    assert got == expected
    assert sim.open_position is None
    assert sim.equity[-1]["equity"] == money(cash)
    perf = performance(sim, TINY, HOUR)
    assert perf.trades == 3 and perf.win_rate == pytest.approx(2 / 3)
    assert perf.total_pnl == sum(e[6] for e in expected)
    assert perf.final_equity - perf.initial_capital == perf.total_pnl
    assert perf.fees_paid == sum(e[5] for e in expected)
    assert perf.profit_factor == pytest.approx(float((expected[0][6] + expected[2][6]) / -expected[1][6]))
    signals = sim.frames()["signals"]
    assert list(signals["signal_type"]) == ["buy", "sell", "buy", "sell", "buy", "sell"]
    assert list(signals["time"]) == [T0 + h * HOUR for h in (4, 5, 12, 14, 19, 22)]


def test_ratios_against_numpy():
    candles = random_walk_candles(600, seed=3)
    p = StrategyParams(fast=5, slow=20)
    sim = simulate(candles, HOUR, p, "r")
    perf = performance(sim, p, HOUR)
    assert perf.trades >= 5
    equity = np.array([10_000.0] + [float(e["equity"]) for e in sim.equity])
    r = equity[1:] / equity[:-1] - 1
    ppy = 365 * 24
    assert perf.sharpe_ratio == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(ppy))
    downside = np.sqrt(np.mean(np.where(r < 0, r, 0.0) ** 2))
    assert perf.sortino_ratio == pytest.approx(r.mean() / downside * np.sqrt(ppy))
    peak = np.maximum.accumulate(equity)
    assert perf.max_drawdown == pytest.approx(((peak - equity) / peak).max())
    assert perf.total_return == pytest.approx(equity[-1] / equity[0] - 1)


def _write(engine, sim, p, start, end):
    with engine.begin() as conn:
        return write_day(conn, sim, SERIES, p, start, end)


def test_writes_are_idempotent_and_agree_with_the_storage_api(any_engine):
    engine = any_engine
    candles = random_walk_candles(24 * 6, seed=5, start=T0)
    p = StrategyParams(fast=4, slow=12, stop_loss=0.015, take_profit=0.02)
    days = [T0 + timedelta(days=d) for d in range(7)]
    # Each day is written from a replay up to its own end, as the daily partitions do.
    for start, end in zip(days[:-1], days[1:], strict=True):
        sim = simulate(candles[candles["time"] < end], HOUR, p, SERIES.book_id(p))
        _write(engine, sim, p, start, end)
    full = simulate(candles, HOUR, p, SERIES.book_id(p))
    perf = performance(full, p, HOUR)
    assert perf.trades >= 3, "the path must trade for the comparison to mean something"
    # A later replay gives the same rows for an earlier day: nothing to write.
    for start, end in zip(days[:-1], days[1:], strict=True):
        assert all(r.written == 0 for r in _write(engine, full, p, start, end).values())
    with engine.begin() as conn:
        result, backtest_id = write_result(conn, perf, SERIES, p, T0, days[-1], "run-1")
        assert result.inserted == 1
        again, same_id = write_result(conn, perf, SERIES, p, T0, days[-1], "run-2")
        assert again.written == 0 and same_id == backtest_id

    wh = Warehouse(engine)
    closed_in_window = perf.trades
    [sp] = wh.get_strategy_performance(strategy=p.name, start=T0, end=days[-1])
    assert sp.closed == closed_in_window
    assert sp.total_pnl == perf.total_pnl
    assert sp.win_rate == pytest.approx(perf.win_rate)
    assert sp.executed == len(full.fills)
    stats = wh.get_bot_trade_statistics(strategy=p.name, start=T0, end=days[-1])
    open_fee = full.open_position["entry_fee"] if full.open_position else Decimal(0)
    assert stats.trades == perf.trades
    assert stats.net_pnl == perf.total_pnl
    assert stats.total_fees == perf.fees_paid - open_fee
    # seed 004 counts wins and the profit factor before fees; the backtest after. Same trades, so:
    gross = [t["gross_pnl"] for t in full.trades]
    assert stats.win_rate == pytest.approx(sum(g > 0 for g in gross) / len(gross))
    assert stats.profit_factor == pytest.approx(perf.profit_factor_before_fees)

    with engine.connect() as conn:
        row = conn.execute(sa.select(BacktestResult).where(BacktestResult.id == backtest_id)).one()
        fills = conn.execute(sa.select(TradeHistory).order_by(TradeHistory.executed_at)).all()
        n_signals = conn.scalar(sa.select(sa.func.count()).select_from(TradingSignal))
        n_trips = conn.scalar(sa.select(sa.func.count()).select_from(BotTrade))
    assert row.trades == perf.trades and row.final_equity == perf.final_equity
    assert row.sharpe_ratio == pytest.approx(perf.sharpe_ratio) and row.run_id == "run-1"
    assert row.win_rate == pytest.approx(sp.win_rate) and row.fees_paid == perf.fees_paid
    assert len(fills) == len(full.fills) and n_signals == len(full.signals) and n_trips == perf.trades
    assert sum(f.realized_pnl or 0 for f in fills) == perf.total_pnl
    # every fill points to the signal it executed, entry and exit share a correlation id
    assert all(f.signal_id is not None for f in fills)
    by_cid = pd.Series([f.correlation_id for f in fills]).value_counts()
    assert set(by_cid) <= {1, 2} and (by_cid == 2).sum() == perf.trades


def test_a_trade_with_zero_fees_has_equal_profit_factors():
    sim = simulate(
        tiny_path(), HOUR, StrategyParams(fast=2, slow=3, stop_loss=0.05, take_profit=0.1, fee_rate=0), "z"
    )
    perf = performance(sim, StrategyParams(fee_rate=0), HOUR)
    assert perf.profit_factor == pytest.approx(perf.profit_factor_before_fees)
