"""Features: partition-correct (a day computed alone equals the whole-series values) and right by
independent pandas formulas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs.derived.lineage import COLUMN_LINEAGE
from market_warehouse.resources.analytics.features import (
    CORE_V1,
    FEATURE_COLUMNS,
    INDICATORS,
    FeatureParams,
    compute_features,
    features_for_window,
    memory_bars,
    read_candles,
    warmup_bars,
    warmup_by_indicator,
)
from market_warehouse.resources.models import Feature
from tests.analytics_data import random_walk_candles, store_candles

SERIES = ("synthetic", "BTC/USDT", "1h")
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 45


@pytest.fixture
def stored(engine):
    candles = random_walk_candles(24 * DAYS, start=START)
    # A hole of 5 hours: warm-up is counted in bars, so gaps must not shorten it.
    candles = candles.drop(index=range(24 * 30 + 3, 24 * 30 + 8)).reset_index(drop=True)
    store_candles(engine, candles)
    return candles


def test_warmup_is_long_enough_for_ema_memory():
    p = FeatureParams()
    warm = warmup_by_indicator(p)
    # (1 - alpha) ** n <= 1e-14 for Wilder's RSI (alpha = 1/14)
    assert (1 - 1 / 14) ** memory_bars(1 / 14) <= 1e-14 < (1 - 1 / 14) ** (memory_bars(1 / 14) - 1)
    assert warm["macd"] > warm["rsi"] > warm["bbands"] >= p.bb_period - 1
    assert warmup_bars(p) == max(warm.values())


@pytest.mark.parametrize("day", [1, 3, 26, 30, 31, 44])
def test_partition_equals_whole_series(engine, stored, day):
    whole = compute_features(stored, CORE_V1.params).set_index("time")
    start = START + timedelta(days=day)
    with engine.connect() as conn:
        part, read = features_for_window(conn, SERIES, start, start + timedelta(days=1), CORE_V1)
    part = part.set_index("time")
    assert len(part) > 0
    assert part.index.min() >= start and part.index.max() < start + timedelta(days=1)
    expected = whole.loc[part.index, FEATURE_COLUMNS]
    if day >= 30:
        # Late days read a bounded history, not the whole series.
        assert len(read) == len(part) + warmup_bars(CORE_V1.params)
    for column in FEATURE_COLUMNS:
        got, want = part[column].to_numpy(), expected[column].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(want)), column
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=column)


def test_partition_with_too_short_warmup_would_differ(engine, stored):
    """The check above can fail: with a 60-bar warm-up MACD is visibly off on day 40."""
    start = START + timedelta(days=40)
    with engine.connect() as conn:
        short = read_candles(conn, SERIES, start, start + timedelta(days=1), warmup=60)
    part = compute_features(short, CORE_V1.params).set_index("time").loc[start:]
    whole = compute_features(stored, CORE_V1.params).set_index("time").loc[part.index]
    assert np.nanmax(np.abs(part["macd_signal"] - whole["macd_signal"])) > 1e-6


def test_values_match_independent_pandas(stored):
    p = CORE_V1.params
    got = compute_features(stored, p)
    close, volume = stored["close"], stored["volume"]
    log_ret = np.log(close).diff()
    pd.testing.assert_series_equal(got["log_return"], log_ret, check_names=False)
    np.testing.assert_allclose(got["volatility"], log_ret.rolling(20).std(), rtol=1e-9)
    mid = close.rolling(20).mean()
    std0 = close.rolling(20).std(ddof=0)
    np.testing.assert_allclose(got["bb_middle"], mid, rtol=1e-9)
    np.testing.assert_allclose(got["bb_upper"], mid + 2 * std0, rtol=1e-9)
    np.testing.assert_allclose(got["bb_lower"], mid - 2 * std0, rtol=1e-9)
    z = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
    np.testing.assert_allclose(got["volume_zscore"], z, rtol=1e-9)
    typical = (stored["high"] + stored["low"] + close) / 3
    day = stored["time"].dt.floor("D")
    vwap = (typical * volume).groupby(day).cumsum() / volume.groupby(day).cumsum()
    np.testing.assert_allclose(got["vwap"], vwap, rtol=1e-12)

    # EMA-based: pandas' recursive EWM forgets its different seed after the warm-up, then agrees.
    tail = slice(700, None)
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    np.testing.assert_allclose(got["macd"][tail], macd[tail], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(
        got["macd_signal"][tail], macd.ewm(span=9, adjust=False).mean()[tail], rtol=1e-9, atol=1e-7
    )
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    np.testing.assert_allclose(got["rsi"][tail], (100 - 100 / (1 + gain / loss))[tail], rtol=1e-9)
    prev = close.shift()
    tr = pd.concat(
        [stored["high"] - stored["low"], (stored["high"] - prev).abs(), (stored["low"] - prev).abs()], axis=1
    ).max(axis=1)
    np.testing.assert_allclose(got["atr"][tail], tr.ewm(alpha=1 / 14, adjust=False).mean()[tail], rtol=1e-9)


def test_every_declared_feature_is_a_column_of_the_model_and_of_the_migrated_table(engine):
    """The `Feature` model's value columns are the outputs of INDICATORS, in order, and the migrated table has
    them (a new indicator without its migration also fails tests/test_schema.py's drift test)."""
    model = [c.name for c in Feature.__table__.c if isinstance(c.type, sa.Float)]
    assert model == FEATURE_COLUMNS == [column for i in INDICATORS for column in i.outputs]
    table = sa.inspect(engine).get_columns("features")
    assert set(FEATURE_COLUMNS) <= {column["name"] for column in table}


@pytest.mark.parametrize("indicator", INDICATORS, ids=lambda i: i.name)
def test_an_indicator_reads_only_its_declared_inputs(stored, indicator):
    """The declared inputs are the column lineage: scrambling every other candle column changes nothing."""
    p = CORE_V1.params
    scrambled = stored.copy()
    for column in {"open", "high", "low", "close", "volume"} - set(indicator.inputs):
        scrambled[column] = scrambled[column].sample(frac=1.0, random_state=7).to_numpy() * 1.37
    for column, want, got in zip(
        indicator.outputs, indicator.compute(stored, p), indicator.compute(scrambled, p), strict=True
    ):
        np.testing.assert_array_equal(got, want, err_msg=column)
    if indicator.inputs != ("open", "high", "low", "close", "volume"):
        dropped = stored.copy()
        dropped[list(indicator.inputs)] = dropped[list(indicator.inputs)].to_numpy()[::-1]
        assert any(
            not np.array_equal(a, b, equal_nan=True)
            for a, b in zip(indicator.compute(stored, p), indicator.compute(dropped, p), strict=True)
        ), "changing the declared inputs changes nothing: the test could not fail"


def test_feature_column_lineage_comes_from_the_declarations():
    lineage = COLUMN_LINEAGE["features"]
    assert set(lineage) == {*FEATURE_COLUMNS, "time"}
    assert lineage["atr"] == ["ohlcv.high", "ohlcv.low", "ohlcv.close"]
    for indicator in INDICATORS:
        for column in indicator.outputs:
            assert lineage[column] == [f"ohlcv.{c}" for c in indicator.inputs]
