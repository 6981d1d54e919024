"""Quality scores and z-score anomalies on a series with injected spikes, z recomputed here independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from quality_data import NOW, START, candles, count, table

from market_warehouse.resources.quality.scores import ScoreConfig
from market_warehouse.resources.warehouse.load import load_frame

CONFIG = ScoreConfig(window=30, min_periods=10)


def _independent_z(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """z of x[i] against the non-missing values among the `window` positions before it (population std)."""
    z = np.full(len(x), np.nan)
    for i in range(len(x)):
        prev = x[max(0, i - window) : i]
        prev = prev[~np.isnan(prev)]
        if len(prev) >= min_periods and prev.std() > 0 and not np.isnan(x[i]):
            z[i] = (x[i] - prev.mean()) / prev.std()
    return z


def _spiked_series(n: int = 90) -> pd.DataFrame:
    frame = candles(n, seed=7)
    close = frame["close"].to_numpy().copy()
    returns = np.diff(np.log(close))
    sigma = returns[:40].std()
    close[50:] *= np.exp(5.0 * sigma)  # a level shift of ~5 sigma: an anomaly, not a black swan
    close[70] *= 1.08  # a one-candle spike of ~40 sigma (up, then back): black swans
    frame["close"] = close
    frame["open"] = np.concatenate([[close[0]], close[:-1]])
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.001
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.999
    frame.loc[80, "volume"] = 40.0  # volume otherwise uniform in [1, 2]
    return frame


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    ret = np.concatenate([[np.nan], np.diff(np.log(frame["close"].to_numpy()))])
    z_ret = _independent_z(ret, CONFIG.window, CONFIG.min_periods)
    z_vol = _independent_z(frame["volume"].to_numpy(), CONFIG.window, CONFIG.min_periods)
    rows = []
    for metric, z in (("return", z_ret), ("volume", z_vol)):
        for i in np.flatnonzero(np.abs(np.nan_to_num(z)) > 4):
            severity = "black_swan" if abs(z[i]) > 6 else "anomaly"
            rows.append((frame["time"].iloc[i], metric, round(float(z[i]), 6), severity))
    return pd.DataFrame(rows, columns=["time", "metric", "zscore", "severity"]).sort_values(
        ["time", "metric"]
    )


def _stored_anomalies(engine) -> pd.DataFrame:
    got = table(engine, "anomalies")
    got["time"] = pd.to_datetime(got["time"], utc=True)
    got["zscore"] = got["zscore"].round(6)
    return got[["time", "metric", "zscore", "severity"]].sort_values(["time", "metric"])


def test_spikes_become_anomalies_and_black_swans(engine):
    frame = _spiked_series()
    expected = _expected(frame)
    assert {"anomaly", "black_swan"} <= set(expected["severity"])  # the fixture exercises both
    assert set(expected["metric"]) == {"return", "volume"}

    result = load_frame(engine, "ohlcv", frame, run_id="r1", now=NOW, score_config=CONFIG)
    assert result.anomalies == len(expected)
    got = _stored_anomalies(engine)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )

    stored = table(engine, "ohlcv", "ORDER BY time")
    flagged = set(pd.to_datetime(stored.loc[stored["is_anomaly"], "time"], utc=True))
    assert flagged == set(expected["time"])
    series_key = table(engine, "anomalies")["series_key"].iloc[0]
    assert series_key == {"exchange": "binance", "symbol": "BTC/USDT", "interval": "1h", "price": "trade"}

    # Consistency: the black-swan candle scores lower than a calm one of the same load.
    score = stored.set_index(pd.to_datetime(stored["time"], utc=True))["quality_score"]
    assert score[frame["time"].iloc[70]] < score[frame["time"].iloc[30]]

    # Re-running writes nothing: same scores, same flags, no duplicate anomalies.
    again = load_frame(engine, "ohlcv", frame, run_id="r2", now=NOW, score_config=CONFIG)
    assert (again.inserted, again.updated, again.unchanged, again.anomalies) == (0, 0, len(frame), 0)
    assert count(engine, "anomalies") == len(expected)


def test_partition_loads_use_warehouse_warm_up(engine):
    """Loading day by day gives the z-scores of the whole series: the warm-up comes from stored candles."""
    frame = _spiked_series()
    for _, day in frame.groupby(frame["time"].dt.floor("D")):
        load_frame(engine, "ohlcv", day, now=NOW, score_config=CONFIG)
    got = _stored_anomalies(engine)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), _expected(frame).reset_index(drop=True), check_dtype=False
    )


def test_score_components(engine):
    live_start = pd.Timestamp(NOW) - pd.Timedelta(hours=3)
    live = candles(3, start=live_start, symbol="ETH/USDT")
    old = candles(3, symbol="SOL/USDT")
    partial = candles(3, symbol="XRP/USDT").assign(vwap=[1.0, np.nan, 1.0])
    load_frame(engine, "ohlcv", pd.concat([live, old, partial], ignore_index=True), now=NOW)
    stored = table(engine, "ohlcv").set_index(["symbol", "time"]).sort_index()
    by_symbol = stored.groupby(level="symbol")["quality_score"]
    # Closed 2h, 1h and 0h before ingest: within 10 intervals -> 7.5 of 10 points; within one -> 10.
    assert stored.loc["ETH/USDT", "quality_score"].tolist() == pytest.approx([97.5, 100.0, 100.0])
    # Candles ingested months after their close lose the timeliness points (10).
    assert by_symbol.max()["SOL/USDT"] == pytest.approx(90.0)
    # One missing value out of six sent columns: completeness 5/6 of 30 points.
    xrp = stored.loc["XRP/USDT", "quality_score"].tolist()
    assert xrp == pytest.approx([90.0, 90.0 - 30 / 6, 90.0], abs=0.05)
    assert stored["quality_score"].between(0, 100).all()


def test_timeseries_data_is_scored_too(engine):
    import sqlalchemy as sa

    with engine.begin() as conn:
        source_id = conn.execute(
            sa.text("INSERT INTO sources (name, kind) VALUES ('idx', 'file') RETURNING id")
        ).scalar()
    values = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 60)))
    values[45] *= 1.5
    frame = pd.DataFrame(
        {"source_id": source_id, "time": START + pd.to_timedelta(np.arange(60), unit="D"), "value": values}
    )
    load_frame(engine, "timeseries_data", frame, now=NOW, score_config=CONFIG)
    stored = table(engine, "timeseries_data", "ORDER BY time")
    assert stored["is_anomaly"].iloc[45]
    assert table(engine, "anomalies")["series_key"].iloc[0] == {"source_id": source_id}
