"""The sync storage API against a real warehouse, each result checked against an independent computation.

Series are small (a few hundred candles) and deterministic; expected values come from pandas / numpy or
from hand-computed figures on a known set of trades, never from the SQL under test.
"""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.intervals import IntervalError
from market_warehouse.resources.models import AuditReportLog, IterationLog, SystemEvent
from market_warehouse.resources.schema import head_revision
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.ops.common import NotFoundError
from market_warehouse.resources.warehouse.records import Candle, Gap, Trade, TradeStatistics, to_frame
from tests.warehouse_data import KNOWN_TRADES, MINUTE, SERIES, T0, candle_frame


@pytest.fixture
def wh(engine):
    return Warehouse(engine)


@pytest.fixture
def any_wh(any_engine):
    return Warehouse(any_engine)


# --- OHLCV --------------------------------------------------------------------------------------------------


def test_ohlcv_round_trip_is_idempotent_and_exact(any_wh):
    frame = candle_frame(300)
    first = any_wh.insert_ohlcv(frame)
    assert (first.inserted, first.updated, first.unchanged) == (300, 0, 0)
    again = any_wh.insert_ohlcv(frame)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 300)

    candles = any_wh.get_ohlcv(*SERIES)
    assert len(candles) == 300 and all(isinstance(c, Candle) for c in candles)
    got = to_frame(candles)
    assert str(got["time"].dtype).endswith("UTC]")
    for column in ("time", "open", "high", "low", "close", "volume"):
        pd.testing.assert_series_equal(got[column], frame[column], check_names=False, check_dtype=False)
    assert all(c.time.tzinfo is UTC for c in candles)


def test_get_ohlcv_range_is_half_open_ordered_and_limited(wh):
    frame = candle_frame(120)
    wh.insert_ohlcv(frame)
    start, end = T0 + 10 * MINUTE, T0 + 20 * MINUTE
    window = wh.get_ohlcv(*SERIES, start=start, end=end)
    assert [c.time for c in window] == list(frame["time"].iloc[10:20])
    assert [c.time for c in wh.get_ohlcv(*SERIES, start=start, limit=3)] == list(frame["time"].iloc[10:13])
    assert [c.time for c in wh.get_ohlcv(*SERIES, end=T0 + 2 * MINUTE)] == list(frame["time"].iloc[:2])
    assert wh.get_ohlcv("binance", "ETH/USDT", "1m") == []
    assert wh.get_ohlcv(*SERIES[:2], "5m") == []
    as_frame = wh.get_ohlcv_frame(*SERIES, start=start, end=end)
    pd.testing.assert_frame_equal(as_frame, to_frame(window)[list(as_frame.columns)], check_dtype=False)
    with pytest.raises(ValueError, match="after end"):
        wh.get_ohlcv(*SERIES, start=end, end=start)
    with pytest.raises(ValueError, match="naive timestamp"):
        wh.get_ohlcv(*SERIES, start=datetime(2024, 3, 4))
    with pytest.raises(IntervalError):
        wh.get_ohlcv("binance", "BTC/USDT", "1 minute")


def test_insert_ohlcv_accepts_records_and_dicts_and_updates_changed_rows(wh):
    frame = candle_frame(10)
    records = [Candle(**row) for row in frame.to_dict("records")]
    assert wh.insert_ohlcv(records).inserted == 10
    changed = [{**r.__dict__, "close": r.close + 1.0, "trades_count": 42} for r in records[:3]]
    result = wh.insert_ohlcv(changed)
    assert (result.inserted, result.updated) == (0, 3)
    stored = wh.get_ohlcv(*SERIES)
    assert [c.close for c in stored[:3]] == [r.close + 1.0 for r in records[:3]]
    assert [c.trades_count for c in stored[:4]] == [42, 42, 42, None]


def test_latest_ohlcv(wh):
    frame = candle_frame(50)
    wh.insert_ohlcv(frame)
    latest = wh.get_latest_ohlcv(*SERIES)
    assert latest.time == frame["time"].iloc[-1] and latest.close == frame["close"].iloc[-1]
    last5 = wh.get_latest_candles(*SERIES, limit=5)
    assert [c.time for c in last5] == list(frame["time"].iloc[-5:])
    assert wh.get_latest_ohlcv("kraken", "BTC/USD", "1m") is None
    assert wh.get_latest_candles("kraken", "BTC/USD", "1m") == []


def expected_gaps(present: list[datetime], start: datetime, end: datetime, step: timedelta) -> list[tuple]:
    """Runs of grid times in [start, end) that are absent, the grid continuing the stored candles."""
    anchor = present[0]
    first = anchor - ((anchor - start) // step) * step
    grid = []
    t = first
    while t < end:
        grid.append(t)
        t += step
    have = set(present)
    runs, run = [], []
    for t in grid:
        if t in have:
            if run:
                runs.append((run[0], run[-1], len(run)))
                run = []
        else:
            run.append(t)
    if run:
        runs.append((run[0], run[-1], len(run)))
    return runs


@pytest.mark.parametrize("interval,step", [("1m", MINUTE), ("4h", timedelta(hours=4))])
def test_ohlcv_gaps_match_a_grid_scan(any_wh, interval, step):
    frame = candle_frame(200, step=step).assign(interval=interval)
    holes = [0, 1, 50, 51, 52, 120, 199]
    kept = frame.drop(index=holes).reset_index(drop=True)
    any_wh.insert_ohlcv(kept)
    present = list(kept["time"])
    start = T0 - 3 * step - step / 2  # unaligned bound: expected times start at T0 - 3 steps
    end = T0 + 203 * step + step / 3
    got = any_wh.get_ohlcv_gaps("binance", "BTC/USDT", interval, start=start, end=end)
    assert all(isinstance(g, Gap) for g in got)
    assert [(g.start, g.end, g.missing) for g in got] == expected_gaps(present, start, end, step)
    assert got[0].start == T0 - 3 * step and got[0].missing == 5  # 3 before T0, then T0 and T0 + 1 step

    interior = any_wh.get_ohlcv_gaps("binance", "BTC/USDT", interval)
    assert [(g.start, g.missing) for g in interior] == [(T0 + 50 * step, 3), (T0 + 120 * step, 1)]


def test_ohlcv_gaps_of_an_empty_range_and_of_calendar_intervals(wh):
    start, end = T0 + timedelta(seconds=30), T0 + 10 * MINUTE
    (gap,) = wh.get_ohlcv_gaps(*SERIES, start=start, end=end)
    assert (gap.start, gap.end, gap.missing) == (T0 + MINUTE, T0 + 9 * MINUTE, 9)
    assert wh.get_ohlcv_gaps(*SERIES) == []
    with pytest.raises(IntervalError, match="calendar month"):
        wh.get_ohlcv_gaps("binance", "BTC/USDT", "1M", start=start, end=end)


def test_price_stats_match_pandas(any_wh):
    frame = candle_frame(240)
    any_wh.insert_ohlcv(frame)
    end = T0 + 200 * MINUTE
    stats = any_wh.get_price_stats(*SERIES, lookback=timedelta(hours=1), end=end)
    window = frame[(frame["time"] >= end - timedelta(hours=1)) & (frame["time"] < end)]
    assert stats.count == len(window) == 60
    assert stats.mean == pytest.approx(window["close"].mean(), rel=1e-12)
    assert stats.std == pytest.approx(window["close"].std(), rel=1e-9)
    assert (stats.min, stats.max) == (window["close"].min(), window["close"].max())
    assert stats.current == window["close"].iloc[-1]
    assert stats.current_time == window["time"].iloc[-1]
    assert (stats.start, stats.end) == (end - timedelta(hours=1), end)

    empty = any_wh.get_price_stats(*SERIES, lookback=timedelta(hours=1), end=T0)
    assert empty.count == 0 and empty.mean is None and empty.current is None


def test_volume_profile_matches_numpy_histogram(any_wh):
    frame = candle_frame(240)
    any_wh.insert_ohlcv(frame)
    start, end = T0 + 20 * MINUTE, T0 + 220 * MINUTE
    levels = any_wh.get_volume_profile(*SERIES, start=start, end=end, bins=12)
    window = frame[(frame["time"] >= start) & (frame["time"] < end)]
    volume, edges = np.histogram(window["close"], bins=12, weights=window["volume"])
    counts, _ = np.histogram(window["close"], bins=12)
    assert [lv.level for lv in levels] == list(range(1, 13))
    np.testing.assert_allclose([lv.volume for lv in levels], volume, rtol=1e-12)
    assert [lv.candles for lv in levels] == list(counts)
    np.testing.assert_allclose([lv.price_low for lv in levels], edges[:-1], rtol=1e-12)
    np.testing.assert_allclose([lv.price_high for lv in levels], edges[1:], rtol=1e-12)
    assert sum(lv.volume for lv in levels) == pytest.approx(window["volume"].sum())


def test_volume_profile_of_a_flat_price_and_of_nothing(wh):
    frame = candle_frame(5).assign(close=10.0, open=10.0, high=10.0, low=10.0)
    wh.insert_ohlcv(frame)
    levels = wh.get_volume_profile(*SERIES, bins=3)
    assert [lv.volume for lv in levels] == pytest.approx([frame["volume"].sum(), 0, 0])
    assert wh.get_volume_profile("binance", "ETH/USDT", "1m") == []
    with pytest.raises(ValueError, match="bins"):
        wh.get_volume_profile(*SERIES, bins=0)


# --- tape trades and order books ----------------------------------------------------------------------------


def test_market_trades_round_trip(any_wh):
    trades = [
        Trade("binance", "BTC/USDT", f"t{i}", T0 + i * timedelta(seconds=7), 100 + i, 0.5, 50 + i / 2, side)
        for i, side in enumerate(["buy", "sell", "buy", None, "sell"])
    ]
    assert any_wh.insert_market_trades(trades).inserted == 5
    assert any_wh.insert_market_trades(trades).unchanged == 5
    assert any_wh.get_market_trades("binance", "BTC/USDT") == trades
    window = any_wh.get_market_trades("binance", "BTC/USDT", start=T0 + timedelta(seconds=7), limit=2)
    assert [t.trade_id for t in window] == ["t1", "t2"]
    frame = to_frame(any_wh.get_market_trades("binance", "BTC/USDT"))
    assert list(frame["price"]) == [100, 101, 102, 103, 104]


def test_orderbook_snapshot_summary_and_idempotence(any_wh):
    bids = [[99.5, 2.0], [99.0, 3.0], [98.0, 1.0]]
    asks = [[100.5, 1.0], [101.0, 4.0]]
    snap = any_wh.insert_orderbook_snapshot("binance", "BTC/USDT", T0, bids, asks)
    assert (snap.best_bid, snap.best_ask, snap.mid_price, snap.spread) == (99.5, 100.5, 100.0, 1.0)
    assert snap.spread_percent == pytest.approx(1.0)
    assert (snap.bid_depth, snap.ask_depth, snap.depth_levels) == (6.0, 5.0, 3)
    assert snap.bids == bids and snap.asks == asks
    assert any_wh.insert_orderbook_snapshot("binance", "BTC/USDT", T0, bids, asks) == snap

    later = any_wh.insert_orderbook_snapshot("binance", "BTC/USDT", T0 + MINUTE, bids[:1], asks[:1])
    replaced = any_wh.insert_orderbook_snapshot("binance", "BTC/USDT", T0, bids[1:], asks)
    assert replaced.best_bid == 99.0
    assert any_wh.get_orderbook_snapshots("binance", "BTC/USDT") == [replaced, later]
    assert any_wh.get_orderbook_snapshots("binance", "BTC/USDT", end=T0 + MINUTE) == [replaced]
    assert any_wh.get_latest_orderbook("binance", "BTC/USDT") == later
    assert any_wh.get_latest_orderbook("binance", "ETH/USDT") is None


# --- agents and signals -------------------------------------------------------------------------------------


def test_agent_decisions_get_their_reward_later(any_wh):
    first = any_wh.log_agent_decision(
        "ppo-1", "BTC/USDT", "buy", state={"rsi": 28.5}, time=T0, confidence=0.8, unrealized_pnl=0.1
    )
    second = any_wh.log_agent_decision("ppo-1", "BTC/USDT", "hold", time=T0 + MINUTE)
    any_wh.log_agent_decision("ppo-2", "ETH/USDT", "sell", time=T0 + 2 * MINUTE)
    assert first.state == {"rsi": 28.5} and first.reward is None and first.unrealized_pnl == Decimal("0.1")

    rewarded = any_wh.update_agent_decision(first.id, reward=1.25, outcome="win", next_state={"rsi": 40})
    assert (rewarded.reward, rewarded.outcome, rewarded.next_state) == (1.25, "win", {"rsi": 40})
    assert any_wh.update_agent_decision(second.id, reward=-0.5, time=T0 + MINUTE).reward == -0.5

    assert [d.action for d in any_wh.get_agent_decisions(agent_id="ppo-1")] == ["hold", "buy"]
    assert [d.agent_id for d in any_wh.get_agent_decisions(pending_reward=True)] == ["ppo-2"]
    assert [d.id for d in any_wh.get_agent_decisions(symbol="BTC/USDT", start=T0 + MINUTE)] == [second.id]
    with pytest.raises(NotFoundError):
        any_wh.update_agent_decision(10_000, reward=1.0)
    with pytest.raises(ValueError, match="at least one"):
        any_wh.update_agent_decision(first.id)


def test_signals_filter_on_execution_and_feed_strategy_performance(any_wh):
    s = [
        any_wh.insert_signal("s1", "BTC/USDT", "binance", "buy", time=T0 + i * MINUTE, interval="1m")
        for i in range(4)
    ]
    other = any_wh.insert_signal("s2", "ETH/USDT", "binance", "sell", time=T0, indicators={"rsi": 71})
    for signal, pnl in zip(s[:3], ["10", "-4", "2"], strict=True):
        executed = any_wh.mark_signal_executed(signal.id, execution_price=100.0, executed_at=T0 + MINUTE)
        assert executed.executed and executed.execution_price == 100.0
        closed = any_wh.close_signal(signal.id, exit_price=101.0, realized_pnl=pnl)
        assert closed.realized_pnl == Decimal(pnl)

    assert {x.id for x in any_wh.get_signals(executed=True)} == {x.id for x in s[:3]}
    assert {x.id for x in any_wh.get_signals(executed=False)} == {s[3].id, other.id}
    assert [x.id for x in any_wh.get_signals(strategy="s1", limit=2)] == [s[3].id, s[2].id]
    assert any_wh.get_signals(symbol="ETH/USDT")[0].indicators == {"rsi": 71}
    with pytest.raises(ValueError, match="signal_type"):
        any_wh.insert_signal("s1", "BTC/USDT", "binance", "long")

    perf = {p.strategy: p for p in any_wh.get_strategy_performance()}
    s1 = perf["s1"]
    assert (s1.signals, s1.executed, s1.closed, s1.wins, s1.losses) == (4, 3, 3, 2, 1)
    assert s1.win_rate == pytest.approx(2 / 3)
    assert (s1.total_pnl, s1.best_pnl, s1.worst_pnl) == (Decimal(8), Decimal(10), Decimal(-4))
    assert round(s1.avg_pnl, 10) == round(Decimal(8) / 3, 10)
    s2 = perf["s2"]
    assert (s2.signals, s2.executed, s2.closed, s2.win_rate, s2.avg_pnl) == (1, 0, 0, None, None)
    assert [p.strategy for p in any_wh.get_strategy_performance(strategy="s2")] == ["s2"]
    assert any_wh.get_strategy_performance(start=T0 + 2 * MINUTE, strategy="s1")[0].signals == 2


# --- our fills and the trading loop's journal ---------------------------------------------------------------


def test_log_trade_and_trade_history(any_wh):
    cid = Warehouse.generate_correlation_id()
    fills = [
        any_wh.log_trade(
            "BTC/USDT",
            "binance",
            "buy",
            quantity=0.1,
            price="62000.5",
            fees=0.1,
            correlation_id=cid,
            signal={"strategy": "s1", "strength": 0.7},
            execution={"order_id": "abc", "filled": 0.1},
            executed_at=T0 + i * timedelta(hours=1),
        )
        for i in range(3)
    ]
    eth = any_wh.log_trade("ETH/USDT", "binance", "sell", 2, 3000, executed_at=T0)
    assert fills[0].quantity == Decimal("0.1") and fills[0].price == Decimal("62000.5")
    assert fills[0].fees == Decimal("0.1")  # not 0.1000000000000000055511151231257827
    assert fills[0].signal == {"strategy": "s1", "strength": 0.7} and fills[0].execution["order_id"] == "abc"
    assert re.fullmatch(r"[0-9a-f]{32}", eth.correlation_id) and eth.correlation_id != cid

    history = any_wh.get_trade_history("BTC/USDT")
    assert [f.id for f in history] == [f.id for f in reversed(fills)]
    window = any_wh.get_trade_history("BTC/USDT", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2))
    assert [f.id for f in window] == [fills[1].id]
    assert len(any_wh.get_trade_history(limit=2)) == 2
    assert {f.id for f in any_wh.get_trade_history(correlation_id=cid)} == {f.id for f in fills}
    with pytest.raises(ValueError, match="side"):
        any_wh.log_trade("BTC/USDT", "binance", "long", 1, 1)


def test_iteration_and_audit_report_logs(wh):
    cid = wh.generate_correlation_id()
    ids = [wh.log_iteration(cid, 7, phase, "ok", duration_ms=12.5) for phase in ("fetch", "decide")]
    report = wh.log_audit_report(cid, "reconciliation", "passed", "0 breaks", findings=[{"check": "cash"}])
    with wh.session() as s:
        rows = s.scalars(sa.select(IterationLog).order_by(IterationLog.id)).all()
        assert [(r.id, r.phase, r.iteration, r.duration_ms) for r in rows] == [
            (ids[0], "fetch", 7, 12.5),
            (ids[1], "decide", 7, 12.5),
        ]
        audit = s.get(AuditReportLog, report)
        assert (audit.correlation_id, audit.summary, audit.findings) == (cid, "0 breaks", [{"check": "cash"}])


def test_equity_curve_and_risk_snapshots(any_wh):
    for i, equity in enumerate(["10000", "10100.10", "9950.5"]):
        any_wh.log_equity_snapshot("main", equity, time=T0 + i * timedelta(days=1), cash=0.1)
    replaced = any_wh.log_equity_snapshot("main", "10200", time=T0 + timedelta(days=1), daily_return=0.02)
    assert replaced.equity == Decimal("10200") and replaced.cash is None
    curve = any_wh.get_equity_curve("main")
    assert [p.equity for p in curve] == [Decimal("10000"), Decimal("10200"), Decimal("9950.5")]
    assert curve[0].cash == Decimal("0.1")
    assert [p.time for p in any_wh.get_equity_curve("main", start=T0 + timedelta(days=1))] == [
        T0 + timedelta(days=1),
        T0 + timedelta(days=2),
    ]
    assert any_wh.get_equity_curve("other") == []

    risk = any_wh.log_risk_metrics(
        "main", time=T0, open_positions=2, gross_exposure="5000.25", var_95=0.031, daily_loss_limit=500
    )
    assert (risk.open_positions, risk.gross_exposure, risk.var_95) == (2, Decimal("5000.25"), 0.031)
    assert risk.daily_loss_limit == Decimal(500) and risk.daily_loss_limit_breached is False
    again = any_wh.log_risk_metrics("main", time=T0, open_positions=3, daily_loss_limit_breached=True)
    assert any_wh.get_risk_metrics("main") == [again]
    with pytest.raises(TypeError, match="unknown risk metrics"):
        any_wh.log_risk_metrics("main", time=T0, var_90=0.1)


def test_correlation_ids_are_unique_uuid7_and_sortable():
    ids = [Warehouse.generate_correlation_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for value in ids[:50]:
        assert re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}", value)
    millis = int(ids[0][:12], 16)
    assert abs(millis / 1000 - datetime.now(UTC).timestamp()) < 60


def test_session_commits_on_success_and_rolls_back_on_error(wh):
    with wh.session() as s:
        s.add(SystemEvent(severity="info", source="test", event_type="kept", message="m"))
    with pytest.raises(RuntimeError), wh.session() as s:
        s.add(SystemEvent(severity="info", source="test", event_type="lost", message="m"))
        s.flush()
        raise RuntimeError("boom")
    assert [e.event_type for e in wh.get_recent_events()] == ["kept"]


# --- bot trades, positions, events --------------------------------------------------------------------------


def test_bot_trade_lifecycle(any_wh):
    opened = any_wh.insert_bot_trade("BTC/USDT", "binance", "long", "100", "2", entry_time=T0, bot_id="b1")
    assert (opened.status, opened.realized_pnl, opened.leverage) == ("open", None, Decimal(1))
    assert any_wh.get_bot_trade(opened.id) == opened
    assert any_wh.get_bot_trade(999_999) is None

    closed = any_wh.close_bot_trade(opened.id, "110", exit_time=T0 + MINUTE, exit_reason="tp", fees=1)
    assert (closed.status, closed.realized_pnl, closed.exit_reason) == ("closed", Decimal(20), "tp")
    assert closed.realized_pnl_pct == pytest.approx(10.0)
    assert any_wh.close_bot_trade(opened.id, "200") == closed  # closing again changes nothing

    short = any_wh.insert_bot_trade("ETH/USDT", "binance", "short", 50, 1, entry_time=T0 + MINUTE)
    assert any_wh.close_bot_trade(short.id, 55).realized_pnl == Decimal(-5)

    updated = any_wh.update_bot_trade(short.id, exit_reason="stop", metadata={"note": "x"}, fees="0.25")
    assert (updated.exit_reason, updated.metadata, updated.fees) == ("stop", {"note": "x"}, Decimal("0.25"))
    with pytest.raises(TypeError, match="unknown"):
        any_wh.update_bot_trade(short.id, colour="red")
    with pytest.raises(NotFoundError):
        any_wh.update_bot_trade(999_999, status="closed")
    with pytest.raises(ValueError, match="side"):
        any_wh.insert_bot_trade("BTC/USDT", "binance", "buy", 1, 1)

    third = any_wh.insert_bot_trade("BTC/USDT", "binance", "long", 1, 1, entry_time=T0 + 2 * MINUTE)
    assert [t.id for t in any_wh.get_recent_bot_trades(limit=2)] == [third.id, short.id]
    assert [t.id for t in any_wh.get_recent_bot_trades(status="open")] == [third.id]
    assert [t.id for t in any_wh.get_recent_bot_trades(bot_id="b1")] == [opened.id]
    assert [t.id for t in any_wh.get_bot_trades_by_symbol("BTC/USDT")] == [third.id, opened.id]
    assert [t.id for t in any_wh.get_bot_trades_by_symbol("BTC/USDT", status="closed")] == [opened.id]


def test_bot_trade_statistics_match_hand_computed_figures(any_wh):
    for i, (side, entry, exit_, qty, fees) in enumerate(KNOWN_TRADES):
        trade = any_wh.insert_bot_trade("BTC/USDT", "binance", side, entry, qty, entry_time=T0, strategy="s")
        any_wh.close_bot_trade(trade.id, exit_, exit_time=T0 + (i + 1) * MINUTE, fees=fees)
    any_wh.insert_bot_trade("BTC/USDT", "binance", "long", 1, 1, entry_time=T0, strategy="s")  # still open

    stats = any_wh.get_bot_trade_statistics()
    assert stats == TradeStatistics(
        trades=5,
        wins=2,
        losses=2,
        breakeven=1,
        win_rate=0.4,
        gross_profit=Decimal(26),
        gross_loss=Decimal(15),
        total_fees=Decimal("2.1"),
        net_pnl=Decimal("8.9"),
        avg_win=Decimal(13),
        avg_loss=Decimal("-7.5"),
        largest_win=Decimal(20),
        largest_loss=Decimal(-10),
        profit_factor=pytest.approx(26 / 15),
    )
    first_two = any_wh.get_bot_trade_statistics(end=T0 + 3 * MINUTE)
    assert (first_two.trades, first_two.net_pnl, first_two.profit_factor) == (2, Decimal("13.5"), 4.0)
    none = any_wh.get_bot_trade_statistics(strategy="other")
    assert (none.trades, none.win_rate, none.net_pnl, none.profit_factor) == (0, None, Decimal(0), None)
    only_wins = any_wh.get_bot_trade_statistics(start=T0 + 5 * MINUTE)
    assert (only_wins.trades, only_wins.profit_factor, only_wins.avg_loss) == (1, None, None)


def test_position_lifecycle(any_wh):
    long_ = any_wh.open_position("BTC/USDT", "binance", "long", "0.5", "60000", stop_loss=58000, opened_at=T0)
    short = any_wh.open_position("ETH/USDT", "binance", "short", "2", "3000", opened_at=T0)
    assert (long_.status, long_.unrealized_pnl, long_.stop_loss) == ("open", Decimal(0), Decimal(58000))
    assert any_wh.get_position(long_.id) == long_
    assert any_wh.get_position(999_999) is None

    marked = any_wh.update_position(long_.id, current_price="61000.5")
    assert (marked.current_price, marked.unrealized_pnl) == (Decimal("61000.5"), Decimal("500.25"))
    assert marked.updated_at >= long_.updated_at
    assert any_wh.update_position(short.id, current_price=2900).unrealized_pnl == Decimal(200)
    resized = any_wh.update_position(short.id, quantity=1, take_profit=2500)
    assert (resized.quantity, resized.unrealized_pnl, resized.take_profit) == (1, Decimal(100), Decimal(2500))
    assert [p.id for p in any_wh.get_open_positions()] == [long_.id, short.id]
    assert [p.id for p in any_wh.get_open_positions(symbol="ETH/USDT")] == [short.id]

    closed = any_wh.close_position(long_.id, 59000, closed_at=T0 + timedelta(hours=1))
    assert (closed.status, closed.realized_pnl, closed.unrealized_pnl) == (
        "closed",
        Decimal(-500),
        Decimal(0),
    )
    assert closed.closed_at == T0 + timedelta(hours=1)
    assert any_wh.close_position(long_.id, 70000) == closed
    assert [p.id for p in any_wh.get_open_positions()] == [short.id]
    with pytest.raises(ValueError, match="closed"):
        any_wh.update_position(long_.id, current_price=1)
    with pytest.raises(NotFoundError):
        any_wh.close_position(999_999, 1)


def test_system_events_by_severity(any_wh):
    for i, severity in enumerate(["debug", "info", "warning", "error", "critical", "info"]):
        any_wh.log_event(severity, "bot", "tick", f"event {i}", time=T0 + i * MINUTE, details={"i": i})
    recent = any_wh.get_recent_events()
    assert [e.message for e in recent] == [f"event {i}" for i in range(5, -1, -1)]
    assert [e.message for e in any_wh.get_recent_events(severity="info")] == ["event 5", "event 1"]
    assert [e.severity for e in any_wh.get_recent_events(min_severity="warning")] == [
        "critical",
        "error",
        "warning",
    ]
    assert [e.details["i"] for e in any_wh.get_recent_events(limit=2)] == [5, 4]
    assert len(any_wh.get_recent_events(since=T0 + 4 * MINUTE)) == 2
    with pytest.raises(ValueError, match="severity"):
        any_wh.log_event("fatal", "bot", "tick", "x")


# --- administration -----------------------------------------------------------------------------------------


def test_table_sizes(any_wh):
    any_wh.insert_ohlcv(candle_frame(100))
    with any_wh.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE ohlcv"))
    sizes = {t.table_name: t for t in any_wh.get_table_sizes()}
    assert {"ohlcv", "positions", "trade_history", "system_events"} <= set(sizes)
    assert sizes["ohlcv"].kind in ("partitioned", "hypertable")
    assert sizes["ohlcv"].total_bytes > 0 and sizes["ohlcv"].pieces >= 1
    assert sizes["ohlcv"].row_estimate == 100
    assert sizes["positions"].kind == "regular"


def test_health_reports_backend_and_schema(any_wh):
    health = any_wh.health()
    assert health.ok and health.error is None
    assert health.backend in ("postgres", "timescaledb", "timescaledb-apache")
    assert health.schema_revision == head_revision() == health.expected_revision and health.schema_current
    assert 0 < health.latency_ms < 10_000
    assert health.server_version


def test_health_of_an_unreachable_server_does_not_raise_or_leak_the_password():
    engine = sa.create_engine(
        "postgresql+psycopg2://trader:s3cret@127.0.0.1:1/wh", connect_args={"connect_timeout": 2}
    )
    health = Warehouse(engine).health()
    assert not health.ok and health.latency_ms is None and health.schema_current is False
    assert "s3cret" not in health.error and "trader:***@127.0.0.1:1/wh" in health.error


def test_warehouse_from_a_url_owns_its_engine(db_url):
    with Warehouse(db_url) as wh:
        assert wh.health().ok
        assert "Warehouse(postgresql+psycopg2://" in repr(wh)
    assert wh.engine.pool.checkedin() == 0


def test_connect_uses_the_configured_warehouse(monkeypatch, db_url):
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    with Warehouse.connect() as wh:
        assert wh.health().ok
        assert wh.engine.url.database == db_url.database


def test_to_frame_of_records_and_of_nothing():
    empty = to_frame([], Candle)
    assert list(empty.columns)[:4] == ["exchange", "symbol", "interval", "time"] and empty.empty
    assert to_frame([]).empty
    gap = Gap("x", "y", "1m", T0, T0 + MINUTE, 2)
    frame = to_frame([gap])
    assert frame.loc[0, "missing"] == 2 and frame["end"].dt.tz is not None
    # A column of missing values keeps its type; money stays exact.
    candles = to_frame([Candle("x", "y", "1m", T0, 1.0, 2.0, 0.5, 1.5, 10.0)], Candle)
    assert (candles["quote_volume"].dtype, candles["trades_count"].dtype) == ("float64", "Int64")
    assert str(candles["time"].dtype) == "datetime64[us, UTC]"
    fills = to_frame([TradeStatistics(0, 0, 0, 0, None, Decimal("0.1"), *[Decimal(0)] * 3, *[None] * 5)])
    assert fills.loc[0, "gross_profit"] == Decimal("0.1") and fills["win_rate"].dtype == "float64"


def test_get_ohlcv_frame_is_typed_like_the_records(wh):
    frame = candle_frame(30)
    wh.insert_ohlcv(frame)
    got = wh.get_ohlcv_frame(*SERIES, limit=10)
    expected = to_frame(wh.get_ohlcv(*SERIES, limit=10), Candle)
    pd.testing.assert_frame_equal(got, expected)
    assert wh.get_ohlcv_frame("binance", "ETH/USDT", "1m").empty


def test_every_operation_is_documented_and_takes_no_connection():
    for name in dir(Warehouse):
        method = getattr(Warehouse, name)
        if name.startswith("_") or not callable(method):
            continue
        assert method.__doc__, name
        assert "conn" not in inspect.signature(method).parameters, name
