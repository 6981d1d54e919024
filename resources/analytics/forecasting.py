"""Forecasts of closing prices per series: a naive baseline, ETS and ARIMA (statsmodels), with 80 % and
95 % prediction intervals, each run registered in `ml_models`.

`target_time` is when the forecast close is observed: the close time of the candle forecast (generated_at
+ h intervals, generated_at being the close of the last training candle), so its actual is the close of the
candle opening one interval earlier.

A run is identified by (model name, version): the name says what is forecast (kind, series, horizon), the
version when (the end of the training window), so re-running a partition updates the same registry row and
rewrites identical forecast rows (zero writes).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy.stats import norm
from sqlalchemy.dialects.postgresql import insert as pg_insert

from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.models import MlModel

CODE_VERSION = "forecasting-1"
MODEL_KINDS = ("naive", "ets", "arima")
LEVELS = (80, 95)
INTERVAL_COLUMNS = ["lower_80", "upper_80", "lower_95", "upper_95"]


@dataclass(frozen=True)
class ForecastParams:
    horizon: int = 24  # steps of the series' interval
    training_bars: int = 500  # the most recent bars up to the end of the partition
    min_training_bars: int = 30
    arima_order: tuple[int, int, int] = (1, 1, 1)
    ets_trend: str | None = "add"
    ets_damped: bool = True


@dataclass(frozen=True)
class ModelRun:
    """One fitted model: what it was trained on and what it forecast."""

    kind: str
    exchange: str
    symbol: str
    interval: str
    training_start: datetime
    training_end: datetime  # = generated_at: the close of the last training bar
    params: dict[str, Any]
    forecast: pd.DataFrame  # horizon_step, target_time, point, lower/upper 80/95

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.exchange}:{self.symbol}:{self.interval}:h{len(self.forecast)}"

    @property
    def version(self) -> str:
        return self.training_end.strftime("%Y-%m-%dT%H:%M:%SZ")


def _z(level: int) -> float:
    return float(norm.ppf(0.5 + level / 200.0))


def fit_naive(y: np.ndarray, horizon: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Last value, with a random-walk interval: one-step residual std times sqrt(h)."""
    sigma = float(np.std(np.diff(y), ddof=1))
    steps = np.arange(1, horizon + 1)
    point = np.full(horizon, y[-1])
    frame = pd.DataFrame({"horizon_step": steps, "point": point})
    for level in LEVELS:
        half = _z(level) * sigma * np.sqrt(steps)
        frame[f"lower_{level}"], frame[f"upper_{level}"] = point - half, point + half
    return frame, {"sigma": sigma}


def fit_ets(y: np.ndarray, horizon: int, p: ForecastParams) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ETS with additive errors (statsmodels' state-space ETSModel gives analytic prediction intervals)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(
        pd.Series(y), error="add", trend=p.ets_trend, damped_trend=p.ets_damped if p.ets_trend else False
    )
    fitted, caught = _fit(lambda: model.fit(disp=False))
    pred = fitted.get_prediction(start=len(y), end=len(y) + horizon - 1)
    return _forecast(fitted, caught, pred.predicted_mean, lambda alpha: pred.pred_int(alpha=alpha))


def fit_arima(y: np.ndarray, horizon: int, p: ForecastParams) -> tuple[pd.DataFrame, dict[str, Any]]:
    from statsmodels.tsa.arima.model import ARIMA

    fitted, caught = _fit(lambda: ARIMA(y, order=p.arima_order).fit())
    forecast = fitted.get_forecast(horizon)
    return _forecast(fitted, caught, forecast.predicted_mean, lambda alpha: forecast.conf_int(alpha=alpha))


def _fit(fit: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    """A statsmodels fit with the warnings it raised (kept in the model's metrics, not printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit()
    return fitted, caught


def _forecast(
    fitted: Any, caught: list[warnings.WarningMessage], point: Any, interval: Callable[[float], Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame of a statsmodels forecast (point, and `interval(alpha)` bounds per level of LEVELS) and
    the fit's summary (parameters, AIC, warnings)."""
    point = np.asarray(point)
    frame = pd.DataFrame({"horizon_step": np.arange(1, len(point) + 1), "point": point})
    for level in LEVELS:
        bounds = np.asarray(interval(1 - level / 100.0))
        frame[f"lower_{level}"], frame[f"upper_{level}"] = bounds[:, 0], bounds[:, 1]
    params = {name: float(v) for name, v in zip(fitted.param_names, fitted.params, strict=True)}
    return frame, {"fitted": params, "aic": float(fitted.aic), "warnings": _messages(caught)}


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return sorted({f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught})


def fit_model(kind: str, y: np.ndarray, horizon: int, p: ForecastParams) -> tuple[pd.DataFrame, dict]:
    if kind == "naive":
        return fit_naive(y, horizon)
    if kind == "ets":
        return fit_ets(y, horizon, p)
    if kind == "arima":
        return fit_arima(y, horizon, p)
    raise ValueError(f"unknown model kind {kind!r}: expected one of {', '.join(MODEL_KINDS)}")


def forecast_series(
    candles: pd.DataFrame,
    series: tuple[str, str, str],
    p: ForecastParams,
    kinds: tuple[str, ...] = MODEL_KINDS,
) -> list[ModelRun]:
    """Fit every model kind on the last `training_bars` closes of `candles` (time, close; sorted)."""
    training = candles.tail(p.training_bars)
    if len(training) < p.min_training_bars:
        return []
    exchange, symbol, interval = series
    step = interval_to_timedelta(interval)
    y = training["close"].to_numpy(dtype="float64")
    generated_at = training["time"].iloc[-1].to_pydatetime() + step
    runs = []
    for kind in kinds:
        frame, fitted = fit_model(kind, y, p.horizon, p)
        frame["target_time"] = [generated_at + k * step for k in frame["horizon_step"]]
        params = {**asdict(p), **fitted, "kind": kind, "n_train": len(y)}
        params["arima_order"] = list(p.arima_order)
        runs.append(
            ModelRun(
                kind=kind,
                exchange=exchange,
                symbol=symbol,
                interval=interval,
                training_start=training["time"].iloc[0].to_pydatetime(),
                training_end=generated_at,
                params=params,
                forecast=frame,
            )
        )
    return runs


def register_run(conn: sa.Connection, run: ModelRun, code_version: str = CODE_VERSION) -> int:
    """Insert or refresh the `ml_models` row of `run` and return its id (metrics are left to accuracy)."""
    values = {
        "name": run.name,
        "version": run.version,
        "kind": run.kind,
        "params": run.params,
        "training_start": run.training_start,
        "training_end": run.training_end,
        "code_version": code_version,
    }
    stmt = pg_insert(MlModel).values(**values)
    changed = sa.tuple_(*[getattr(MlModel, k) for k in values]).is_distinct_from(
        sa.tuple_(*[getattr(stmt.excluded, k) for k in values])
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name", "version"], set_={k: stmt.excluded[k] for k in values}, where=changed
    ).returning(MlModel.id)
    model_id = conn.execute(stmt).scalar()
    if model_id is None:  # unchanged: the conditional update returned nothing
        model_id = conn.execute(
            sa.select(MlModel.id).where(MlModel.name == run.name, MlModel.version == run.version)
        ).scalar_one()
    return int(model_id)


def forecast_rows(run: ModelRun, model_id: int) -> pd.DataFrame:
    """Rows of the `forecasts` table for one run."""
    frame = run.forecast.copy()
    frame["model_id"] = model_id
    frame["exchange"], frame["symbol"], frame["interval"] = run.exchange, run.symbol, run.interval
    frame["generated_at"] = pd.Timestamp(run.training_end)
    frame["target_time"] = pd.to_datetime(frame["target_time"], utc=True)
    columns = ["model_id", "symbol", "interval", "generated_at", "target_time", "exchange", "horizon_step"]
    return frame[[*columns, "point", *INTERVAL_COLUMNS]]


def params_digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
