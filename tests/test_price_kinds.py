"""Issue 13: a candle series is (exchange, symbol, interval, price kind) everywhere candles are stored or read.

On every backend (embedded PostgreSQL; TimescaleDB full / Apache-only with TIMESCALEDB_URL /
TIMESCALEDB_APACHE_URL): trade and mark candles of the same (exchange, symbol, interval, time) are stored
side by side, neither overwritten; reads, the latest candle, gaps, the 1h/1d aggregates and retention with
a cold tier each see one price kind.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.analytics.features import read_candles, series_in_window
from market_warehouse.resources.maintenance import retention
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to, refresh_aggregates
from market_warehouse.resources.maintenance.compression import compress_chunks
from market_warehouse.resources.maintenance.policy import parse_policy
from market_warehouse.resources.warehouse.api import Warehouse
from tests.maintenance_data import candles, caps_of, count

NOW = floor_to(clock.now(), HOUR)
START = floor_to(NOW - timedelta(days=60), DAY)  # old enough for retention to drop its piece
SYMBOL = "BTC/USDT:USDT"
SERIES = ("testex", SYMBOL, "1m")
MINUTES = 180


def _kind(frame: pd.DataFrame, price: str, shift: float) -> pd.DataFrame:
    """The frame as candles of price kind `price`, prices moved by `shift` so the kinds are told apart."""
    moved = frame.assign(price=price)
    for column in ("open", "high", "low", "close", "vwap"):
        moved[column] = moved[column] + shift
    return moved


@pytest.fixture
def stored(any_engine) -> dict[str, pd.DataFrame]:
    """Trade candles (no price column: the default kind) and mark candles of the same keys, with a hole
    in the mark series only."""
    base = candles(SYMBOL, START, MINUTES)
    trade = base.copy()
    mark = _kind(base, "mark", 0.25).drop(index=range(60, 70)).reset_index(drop=True)
    wh = Warehouse(any_engine)
    assert wh.insert_ohlcv(trade).inserted == MINUTES
    assert wh.insert_ohlcv(mark).inserted == MINUTES - 10
    return {"trade": trade.assign(price="trade"), "mark": mark}


def test_trade_and_mark_candles_are_stored_side_by_side(any_engine, stored):
    wh = Warehouse(any_engine)
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE price = 'trade'") == MINUTES
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE price = 'mark'") == MINUTES - 10
    # The same mark candles again change nothing, and the trade candles kept their values.
    again = wh.insert_ohlcv(stored["mark"])
    assert (again.inserted, again.updated) == (0, 0)
    for price, expected in stored.items():
        got = wh.get_ohlcv_frame(*SERIES, price=price)
        assert len(got) == len(expected)
        assert (got["price"] == price).all()
        np.testing.assert_allclose(got["close"].to_numpy(), expected["close"].to_numpy())
        records = wh.get_ohlcv(*SERIES, price=price, limit=5)
        assert [c.close for c in records] == pytest.approx(expected["close"].head(5).tolist())
        assert {c.price for c in records} == {price}
    # Default: traded prices.
    assert wh.get_ohlcv(*SERIES, limit=1)[0].close == pytest.approx(stored["trade"]["close"].iloc[0])
    latest = wh.get_latest_ohlcv(*SERIES, price="mark")
    assert latest.price == "mark" and latest.close == pytest.approx(stored["mark"]["close"].iloc[-1])
    assert wh.get_price_stats(*SERIES, lookback=NOW - START, end=NOW, price="mark").count == MINUTES - 10
    with pytest.raises(ValueError, match="unknown price kind 'last'"):
        wh.get_ohlcv(*SERIES, price="last")


def test_gaps_are_per_price_kind(any_engine, stored):
    wh = Warehouse(any_engine)
    end = START + timedelta(minutes=MINUTES)
    assert wh.get_ohlcv_gaps(*SERIES, start=START, end=end) == []
    gaps = wh.get_ohlcv_gaps(*SERIES, start=START, end=end, price="mark")
    assert [(g.start, g.end, g.missing) for g in gaps] == [
        (START + timedelta(minutes=60), START + timedelta(minutes=69), 10)
    ]
    assert len(wh.get_ohlcv_gaps(*SERIES, start=START, end=end, price="index")) == 1  # nothing stored


def test_aggregates_are_per_price_kind(any_engine, stored):
    refresh_aggregates(any_engine)
    wh = Warehouse(any_engine)
    for price, frame in stored.items():
        hourly = wh.get_ohlcv_frame(SERIES[0], SYMBOL, "1h", source="aggregate", price=price)
        assert len(hourly) == 3 and (hourly["price"] == price).all()
        first = frame[frame["time"] < START + HOUR]
        assert hourly["open"].iloc[0] == pytest.approx(first["open"].iloc[0])
        assert hourly["close"].iloc[0] == pytest.approx(first["close"].iloc[-1])
        assert hourly["volume"].sum() == pytest.approx(frame["volume"].sum())
        daily = wh.get_ohlcv(SERIES[0], SYMBOL, "1d", source="aggregate", price=price)
        assert len(daily) == 1 and daily[0].price == price
        assert daily[0].high == pytest.approx(frame["high"].max())
    assert wh.get_ohlcv_frame(SERIES[0], SYMBOL, "1h", source="aggregate", price="index").empty


def test_retention_and_the_cold_tier_keep_each_price_kind(any_engine, stored, safe_tmp):
    cold = safe_tmp / "cold"
    policy = parse_policy({"retention": {"ohlcv": {"1m": "30d"}}, "cold": {"ohlcv": str(cold)}})
    result = retention.apply_retention(any_engine, policy, now=NOW)
    assert not result.of(retention.EXPORT_FAILED)
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == 0
    with any_engine.connect() as conn:
        kinds = dict(conn.execute(sa.text("SELECT price, sum(rows) FROM cold_pieces GROUP BY price")).all())
    assert kinds == {"trade": MINUTES, "mark": MINUTES - 10}
    assert {p.name for p in cold.rglob("price=*")} == {"price=trade", "price=mark"}
    wh = Warehouse(any_engine)
    for price, frame in stored.items():
        got = wh.get_ohlcv_frame(*SERIES, price=price)  # from the cold tier now
        assert len(got) == len(frame) and (got["price"] == price).all()
        np.testing.assert_allclose(got["close"].to_numpy(), frame["close"].to_numpy())


def test_derived_features_read_traded_prices_only(any_engine, stored):
    mark_only = _kind(candles("ETH/USDT:USDT", START, 30, seed=5), "mark", 0.0)
    Warehouse(any_engine).insert_ohlcv(mark_only)
    end = START + timedelta(minutes=MINUTES)
    with any_engine.connect() as conn:
        assert series_in_window(conn, START, end) == [SERIES]
        got = read_candles(conn, SERIES, START, end)
    np.testing.assert_allclose(got["close"].to_numpy(), stored["trade"]["close"].to_numpy())


def test_compressed_chunks_keep_price_kinds_apart(any_engine, stored):
    """TimescaleDB full: ohlcv's segments are per price kind (migration 0005), so compressed chunks read
    and take corrections per kind; elsewhere the job reports compression unavailable."""
    policy = parse_policy({"compression": {"after": "7d", "tables": ["ohlcv"]}})
    result = compress_chunks(any_engine, policy, now=NOW)
    if not caps_of(any_engine).compression:
        pytest.skip(f"no columnstore on this backend: {result.status}")
    assert result.chunks_converted >= 1
    wh = Warehouse(any_engine)
    for price, frame in stored.items():
        got = wh.get_ohlcv_frame(*SERIES, price=price)
        np.testing.assert_allclose(got["close"].to_numpy(), frame["close"].to_numpy())
    # A late mark candle in the hole of a compressed chunk: stored beside the trade candle of that minute.
    late = stored["mark"].head(1).assign(time=START + timedelta(minutes=65), close=1.0, low=0.5)
    assert wh.insert_ohlcv(late).inserted == 1
    assert wh.get_ohlcv(*SERIES, start=late["time"].iloc[0], limit=1, price="mark")[0].close == 1.0
    trade = wh.get_ohlcv(*SERIES, start=late["time"].iloc[0], limit=1)[0]
    assert trade.close == pytest.approx(stored["trade"]["close"].iloc[65])
