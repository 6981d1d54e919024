"""get_ohlcv('1h'/'1d') reads stored candles of that interval, or the aggregates built from 1m candles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from market_warehouse.resources.maintenance.aggregates import refresh_aggregates
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.upsert import upsert_dataframe

START = datetime(2026, 3, 2, tzinfo=UTC)


def _candles(symbol: str, interval: str, count: int, step: timedelta, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + rng.normal(0, 1, count).cumsum()
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "exchange": "testex",
            "symbol": symbol,
            "interval": interval,
            "time": pd.date_range(START, periods=count, freq=step, tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(1, 10, count),
        }
    )


@pytest.fixture
def seeded(any_engine):
    minutes = _candles("BTC/USDT", "1m", 180, timedelta(minutes=1), seed=1)
    stored_hours = _candles("ETH/USDT", "1h", 5, timedelta(hours=1), seed=2)
    upsert_dataframe(any_engine, "ohlcv", minutes)
    upsert_dataframe(any_engine, "ohlcv", stored_hours)
    refresh_aggregates(any_engine)
    return Warehouse(any_engine), minutes, stored_hours


def test_hourly_candles_come_from_the_aggregate_when_none_are_stored(seeded):
    wh, minutes, _ = seeded
    candles = wh.get_ohlcv("testex", "BTC/USDT", "1h")
    assert len(candles) == 3
    assert {c.source for c in candles} == {"aggregate:ohlcv_1h"}
    hours = minutes.groupby(minutes["time"].dt.floor("h"))
    expected = hours.agg(open=("open", "first"), close=("close", "last"), volume=("volume", "sum"))
    assert [c.time for c in candles] == [t.to_pydatetime() for t in expected.index]
    np.testing.assert_allclose([c.open for c in candles], expected["open"], rtol=1e-12)
    np.testing.assert_allclose([c.close for c in candles], expected["close"], rtol=1e-12)
    np.testing.assert_allclose([c.volume for c in candles], expected["volume"], rtol=1e-9)
    frame = wh.get_ohlcv_frame("testex", "BTC/USDT", "1h")
    assert len(frame) == 3 and (frame["interval"] == "1h").all()


def test_stored_hourly_candles_win_over_the_aggregate(seeded):
    wh, _, stored = seeded
    candles = wh.get_ohlcv("testex", "ETH/USDT", "1h")
    assert [c.time for c in candles] == [t.to_pydatetime() for t in stored["time"]]
    assert all(c.source is None or not c.source.startswith("aggregate:") for c in candles)


def test_source_can_be_forced(seeded):
    wh, _, _ = seeded
    assert wh.get_ohlcv("testex", "BTC/USDT", "1h", source="stored") == []
    assert len(wh.get_ohlcv("testex", "BTC/USDT", "1d", source="aggregate")) == 1
    with pytest.raises(ValueError, match="only '1h' and '1d'"):
        wh.get_ohlcv("testex", "BTC/USDT", "5m", source="aggregate")
