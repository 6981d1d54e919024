"""Forecasts: intervals nest and widen, runs are registered once, accuracy matches hand computation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.analytics.accuracy import (
    accuracy_metrics,
    fill_actuals,
    runs_with_targets_in,
    score_runs,
    skill,
    store_scores,
)
from market_warehouse.resources.analytics.forecasting import (
    MODEL_KINDS,
    ForecastParams,
    fit_naive,
    forecast_rows,
    forecast_series,
    register_run,
)
from market_warehouse.resources.models import Forecast, MlModel
from tests.analytics_data import random_walk_candles, store_candles

SERIES = ("synthetic", "BTC/USDT", "1h")
PARAMS = ForecastParams(horizon=12, training_bars=200)


@pytest.fixture(scope="module")
def runs():
    candles = random_walk_candles(240, seed=11)
    return forecast_series(candles.iloc[:200], SERIES, PARAMS), candles


def test_every_kind_forecasts_with_nested_intervals(runs):
    fitted, candles = runs
    assert [r.kind for r in fitted] == list(MODEL_KINDS)
    first_target = candles["time"].iloc[200] + timedelta(hours=1)  # the close of the next candle
    for run in fitted:
        f = run.forecast
        assert len(f) == PARAMS.horizon and list(f["horizon_step"]) == list(range(1, 13))
        assert f["target_time"].iloc[0] == first_target
        assert run.training_end == candles["time"].iloc[200].to_pydatetime()
        assert (f["lower_95"] < f["lower_80"]).all() and (f["lower_80"] < f["point"]).all()
        assert (f["point"] < f["upper_80"]).all() and (f["upper_80"] < f["upper_95"]).all()
        width = f["upper_95"] - f["lower_95"]
        assert (np.diff(width) > 0).all(), f"{run.kind}: uncertainty must grow with the horizon"


def test_naive_interval_is_residual_std_times_sqrt_h():
    y = np.array([100.0, 101.0, 99.0, 102.0, 104.0, 103.0])
    frame, params = fit_naive(y, 4)
    sigma = np.std(np.diff(y), ddof=1)
    assert params["sigma"] == pytest.approx(sigma)
    assert (frame["point"] == 103.0).all()
    np.testing.assert_allclose(frame["upper_95"] - 103.0, 1.959963984540054 * sigma * np.sqrt([1, 2, 3, 4]))
    np.testing.assert_allclose(103.0 - frame["lower_80"], 1.2815515655446004 * sigma * np.sqrt([1, 2, 3, 4]))


def test_accuracy_metrics_by_hand():
    frame = pd.DataFrame(
        {
            "point": [100.0, 102.0, 98.0, 105.0],
            "actual": [101.0, 100.0, 98.0, np.nan],
            "lower_80": [99.5, 100.5, 97.0, 0.0],
            "upper_80": [100.5, 103.5, 99.0, 0.0],
            "lower_95": [99.0, 99.0, 96.0, 0.0],
            "upper_95": [101.0, 105.0, 100.0, 0.0],
        }
    )
    m = accuracy_metrics(frame)
    assert m["n"] == 3
    assert m["mae"] == pytest.approx((1 + 2 + 0) / 3)
    assert m["mape"] == pytest.approx((1 / 101 + 2 / 100 + 0) / 3 * 100)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 4 + 0) / 3))
    assert m["bias"] == pytest.approx((1 - 2 + 0) / 3)
    assert m["coverage_80"] == pytest.approx(1 / 3)  # only 98 in [97, 99]
    assert m["coverage_95"] == pytest.approx(1.0)  # 101 on the boundary counts as inside
    assert skill(1.0, 2.0) == pytest.approx(0.5) and skill(3.0, 2.0) == pytest.approx(-0.5)
    assert skill(1.0, 0.0) is None


def _store_runs(engine, fitted) -> dict[str, int]:
    ids = {}
    with engine.begin() as conn:
        for run in fitted:
            ids[run.kind] = register_run(conn, run)
            rows = forecast_rows(run, ids[run.kind]).to_dict("records")
            conn.execute(sa.insert(Forecast), rows)
    return ids


def test_register_fill_and_score_in_the_warehouse(engine, runs):
    fitted, candles = runs
    ids = _store_runs(engine, fitted)
    with engine.begin() as conn:  # registering again finds the same rows
        assert {run.kind: register_run(conn, run) for run in fitted} == ids
        assert conn.scalar(sa.select(sa.func.count()).select_from(MlModel)) == 3
        row = conn.execute(sa.select(MlModel).where(MlModel.id == ids["ets"])).one()
        assert row.training_end == fitted[1].training_end and row.code_version
        assert row.params["horizon"] == 12 and row.params["n_train"] == 200

    # Actuals arrive for the first 8 of the 12 target hours.
    store_candles(engine, candles.iloc[200:208])
    start, end = candles["time"].iloc[200], candles["time"].iloc[200] + timedelta(days=1)
    now = datetime(2024, 2, 1, tzinfo=UTC)
    with engine.begin() as conn:
        assert fill_actuals(conn, start, end, now) == 3 * 8
        assert fill_actuals(conn, start, end, now) == 0  # idempotent
        model_ids = runs_with_targets_in(conn, start, end)
        assert sorted(model_ids) == sorted(ids.values())
        scores = score_runs(conn, model_ids).set_index("kind")
        assert store_scores(conn, scores.reset_index()) == 3
        assert store_scores(conn, scores.reset_index()) == 0

    actual = candles["close"].iloc[200:208].to_numpy()
    maes = {}
    for run in fitted:
        f = run.forecast.iloc[:8]
        maes[run.kind] = np.mean(np.abs(actual - f["point"].to_numpy()))
        assert scores.loc[run.kind, "n"] == 8
        assert scores.loc[run.kind, "mae"] == pytest.approx(maes[run.kind])
        inside = (actual >= f["lower_95"]) & (actual <= f["upper_95"])
        assert scores.loc[run.kind, "coverage_95"] == pytest.approx(inside.mean())
    for kind in ("ets", "arima"):
        assert scores.loc[kind, "skill"] == pytest.approx(1 - maes[kind] / maes["naive"])
    with engine.connect() as conn:
        stored = conn.execute(sa.select(MlModel.metrics).where(MlModel.id == ids["arima"])).scalar_one()
    assert stored["mae"] == pytest.approx(maes["arima"]) and stored["n"] == 8
    assert stored["skill"] == pytest.approx(1 - maes["arima"] / maes["naive"])
