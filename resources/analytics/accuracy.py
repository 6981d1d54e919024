"""Forecast accuracy: fill actuals from `ohlcv` when they arrive, then score every model run.

Scores live in `ml_models.metrics` (JSONB) of the run they describe, so "how good was the ETS model fitted
on 2024-01-02 for BTC/USDT 1h" is one row: n, MAE, MAPE (%), RMSE, bias, 80 %/95 % interval coverage and
skill = 1 - MAE / MAE(naive), the naive run being the one of the same series, horizon and training end,
scored on the same target times. Scores are recomputed as more actuals arrive (a 24-step forecast is
complete after its last target candle is stored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.models import TRADE_PRICE, Forecast, MlModel, Ohlcv


def fill_actuals(conn: sa.Connection, start: datetime, end: datetime, now: datetime) -> int:
    """Set actual/error on forecasts with a target time in [start, end) whose candle is stored; returns rows
    changed. A target time is a candle's close time, so the candle opened one interval before it.

    Only rows whose actual differs are touched, so a re-run changes nothing.
    """
    window = (Forecast.target_time >= start, Forecast.target_time < end)
    intervals = conn.scalars(sa.select(Forecast.interval).where(*window).distinct()).all()
    changed = 0
    for interval in intervals:
        step = interval_to_timedelta(interval)
        stmt = (
            sa.update(Forecast)
            .where(
                *window,
                Forecast.interval == interval,
                Ohlcv.exchange == Forecast.exchange,
                Ohlcv.symbol == Forecast.symbol,
                Ohlcv.interval == Forecast.interval,
                Ohlcv.price == TRADE_PRICE,  # forecasts are of traded prices
                Ohlcv.time == Forecast.target_time - step,
                Forecast.actual.is_distinct_from(Ohlcv.close),
            )
            .values(actual=Ohlcv.close, error=Ohlcv.close - Forecast.point, actual_filled_at=now)
        )
        changed += conn.execute(stmt).rowcount
    return changed


def accuracy_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """Scores of forecasts with actuals (columns point, actual, lower/upper 80/95)."""
    scored = frame.dropna(subset=["actual"])
    n = len(scored)
    if n == 0:
        return {"n": 0}
    err = scored["actual"] - scored["point"]
    abs_err = err.abs()
    nonzero = scored["actual"] != 0
    return {
        "n": n,
        "mae": float(abs_err.mean()),
        "mape": float((abs_err[nonzero] / scored["actual"][nonzero].abs()).mean() * 100.0),
        "rmse": float(np.sqrt((err**2).mean())),
        "bias": float(err.mean()),
        "coverage_80": _coverage(scored, 80),
        "coverage_95": _coverage(scored, 95),
    }


def _coverage(scored: pd.DataFrame, level: int) -> float | None:
    lower, upper = scored[f"lower_{level}"], scored[f"upper_{level}"]
    known = lower.notna() & upper.notna()
    if not known.any():
        return None
    inside = (scored["actual"] >= lower) & (scored["actual"] <= upper)
    return float(inside[known].mean())


def skill(mae: float, mae_naive: float | None) -> float | None:
    """1 - MAE / MAE_naive: positive when the model beats the naive forecast on the same targets."""
    if mae_naive is None or mae_naive == 0 or not np.isfinite(mae_naive):
        return None
    return 1.0 - mae / mae_naive


def runs_with_targets_in(conn: sa.Connection, start: datetime, end: datetime) -> list[int]:
    """Model runs having a target time in [start, end): those whose scores may have changed."""
    query = (
        sa.select(Forecast.model_id)
        .where(Forecast.target_time >= start, Forecast.target_time < end)
        .distinct()
    )
    return sorted(int(r) for r in conn.scalars(query))


def _forecasts_of(conn: sa.Connection, model_ids: list[int]) -> pd.DataFrame:
    cols = [
        Forecast.model_id,
        Forecast.exchange,
        Forecast.symbol,
        Forecast.interval,
        Forecast.generated_at,
        Forecast.horizon_step,
        Forecast.target_time,
        Forecast.point,
        Forecast.actual,
        Forecast.lower_80,
        Forecast.upper_80,
        Forecast.lower_95,
        Forecast.upper_95,
    ]
    query = sa.select(*cols, MlModel.kind, MlModel.name).join(MlModel, MlModel.id == Forecast.model_id)
    query = query.where(Forecast.model_id.in_(model_ids))
    return pd.DataFrame(
        conn.execute(query).mappings().all(), columns=[*[c.key for c in cols], "kind", "name"]
    )


def score_runs(conn: sa.Connection, model_ids: list[int]) -> pd.DataFrame:
    """Scores of `model_ids` (plus skill vs their naive sibling), one row per run."""
    if not model_ids:
        return pd.DataFrame(columns=["model_id", "name", "kind"])
    frame = _forecasts_of(conn, model_ids)
    # The naive sibling of every run: same series, training end and horizon.
    sibling_key = ["exchange", "symbol", "interval", "generated_at"]
    naive_ids = _naive_siblings(conn, frame[sibling_key].drop_duplicates())
    extra = sorted(set(naive_ids["model_id"]) - set(model_ids))
    if extra:
        frame = pd.concat([frame, _forecasts_of(conn, extra)], ignore_index=True)
    naive = frame[frame["kind"] == "naive"][[*sibling_key, "target_time", "point", "actual"]]
    rows = []
    for model_id, group in frame[frame["model_id"].isin(model_ids)].groupby("model_id"):
        metrics = accuracy_metrics(group)
        if metrics["n"] and group["kind"].iloc[0] != "naive":
            merged = group.merge(naive, on=[*sibling_key, "target_time"], suffixes=("", "_naive"))
            merged = merged.dropna(subset=["actual"])
            if len(merged):
                mae = float((merged["actual"] - merged["point"]).abs().mean())
                mae_naive = float((merged["actual"] - merged["point_naive"]).abs().mean())
                metrics["mae_naive"] = mae_naive
                metrics["skill"] = skill(mae, mae_naive)
        elif metrics["n"]:
            metrics["skill"] = 0.0
        rows.append(
            {
                "model_id": int(model_id),
                "name": group["name"].iloc[0],
                "kind": group["kind"].iloc[0],
                **metrics,
            }
        )
    return pd.DataFrame(rows)


def _naive_siblings(conn: sa.Connection, keys: pd.DataFrame) -> pd.DataFrame:
    query = (
        sa.select(
            Forecast.model_id, Forecast.exchange, Forecast.symbol, Forecast.interval, Forecast.generated_at
        )
        .join(MlModel, MlModel.id == Forecast.model_id)
        .where(MlModel.kind == "naive", Forecast.generated_at.in_(list(keys["generated_at"].unique())))
        .distinct()
    )
    found = pd.DataFrame(conn.execute(query).mappings().all(), columns=["model_id", *keys.columns])
    return found.merge(keys, on=list(keys.columns))


def store_scores(conn: sa.Connection, scores: pd.DataFrame) -> int:
    """Write each run's scores into ml_models.metrics where they changed; returns rows changed."""
    changed = 0
    for record in scores.to_dict("records"):
        metrics = {k: _json_safe(v) for k, v in record.items() if k not in {"model_id", "name", "kind"}}
        stmt = (
            sa.update(MlModel)
            .where(MlModel.id == record["model_id"])
            .where(
                MlModel.metrics.is_distinct_from(
                    sa.cast(sa.literal(metrics, MlModel.metrics.type), MlModel.metrics.type)
                )
            )
            .values(metrics=metrics)
        )
        changed += conn.execute(stmt).rowcount
    return changed


def _json_safe(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


def summary_by_kind(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model kind (for the asset's metadata table): `n` the forecasts scored (a sum: a mean of the runs'
    counts read as a count, e.g. 23.3333), the scores their mean over the runs. `scores` may hold a run
    more than once (scored again on each day its targets reach, in order): its last score counts."""
    if scores.empty or "mae" not in scores:
        return pd.DataFrame()
    if "model_id" in scores:
        scores = scores.drop_duplicates("model_id", keep="last")
    cols = [c for c in ["n", "mae", "mape", "coverage_80", "coverage_95", "skill"] if c in scores]
    how = {c: "sum" if c == "n" else "mean" for c in cols}
    return scores.groupby("kind")[cols].agg(how).reset_index()
