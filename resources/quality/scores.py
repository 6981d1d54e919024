"""Quality score (0-100) per stored row and rolling z-score anomalies per series, vectorized per batch.

Computed in the pipeline, not by per-row triggers: a trigger would cost the bulk-load rate.

Score = 30 x completeness + 10 x timeliness + 30 x consistency + 30 x rules, each component in [0, 1]:

* completeness: share of non-null values among the value columns the source sends (a column absent from the
  whole batch is not held against it);
* timeliness: ingest delay after the candle closed; 1 up to a grace of one interval (at least 60 s), then
  falling linearly in log10(delay / grace) to 0 at 1000 x grace. The delay is measured from the row's FIRST
  ingest (stored `ingested_at` when the row exists), so re-running a partition scores it the same;
* consistency vs the previous value: 1 while |z| of the log return is <= 3, 0 at |z| >= 6 (1 during the
  warm-up when no z exists yet);
* rules: 1 - 0.5 per failed warning rule (two warnings or more -> 0).

Anomalies: z of the log return and of the volume against the previous `window` values of the same series
(the current value excluded, population std), at least `min_periods` of them. |z| > 4 -> an `anomalies`
row with severity 'anomaly', |z| > 6 -> 'black_swan'; either sets `is_anomaly` on the row. The warm-up
history comes from the warehouse (the last `window + 1` stored values before the batch), so a partition
gets the same z whether it is loaded alone or in a backfill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from resources.quality.jsonsafe import json_safe
from resources.quality.split import close_times, interval_seconds
from resources.sqlfiles import sql_text

WEIGHTS = {"completeness": 30.0, "timeliness": 10.0, "consistency": 30.0, "rules": 30.0}


@dataclass(frozen=True)
class ScoreConfig:
    window: int = 100
    min_periods: int = 20
    anomaly_z: float = 4.0
    black_swan_z: float = 6.0


@dataclass(frozen=True)
class SeriesSpec:
    """How a scored table names its series, its price and volume, and the columns scored for completeness."""

    series: tuple[str, ...]
    history_sql: str
    value_columns: tuple[str, ...]
    interval_column: str | None


SCORED: dict[str, SeriesSpec] = {
    "ohlcv": SeriesSpec(
        ("exchange", "symbol", "interval"),
        "common/quality_ohlcv_history",
        ("open", "high", "low", "close", "volume", "quote_volume", "trades_count", "vwap"),
        "interval",
    ),
    "timeseries_data": SeriesSpec(
        ("source_id",),
        "common/quality_timeseries_history",
        ("value", "open", "high", "low", "close", "volume"),
        None,
    ),
}


def _price(dataset: str, frame: pd.DataFrame) -> pd.Series:
    if dataset == "timeseries_data":
        close = frame["close"] if "close" in frame else pd.Series(np.nan, index=frame.index)
        value = frame["value"] if "value" in frame else pd.Series(np.nan, index=frame.index)
        return close.astype("float64").fillna(value.astype("float64"))
    return frame["close"].astype("float64")


def load_history(conn: sa.Connection, dataset: str, frame: pd.DataFrame, config: ScoreConfig) -> pd.DataFrame:
    """Stored rows of the batch's series: warm-up before the batch and stored versions of its range."""
    spec = SCORED[dataset]
    bounds = (
        frame.groupby(list(spec.series), sort=False, dropna=False)["time"].agg(["min", "max"]).reset_index()
    )
    params: dict[str, object] = {"warmup": config.window + 1}
    params["starts"] = [t.to_pydatetime() for t in bounds["min"]]
    params["ends"] = [t.to_pydatetime() for t in bounds["max"]]
    if dataset == "ohlcv":
        params |= {
            "exchanges": bounds["exchange"].tolist(),
            "symbols": bounds["symbol"].tolist(),
            "intervals": bounds["interval"].tolist(),
        }
    else:
        params["source_ids"] = [int(v) for v in bounds["source_id"]]
    rows = conn.execute(sql_text(spec.history_sql), params).mappings().all()
    columns = [*spec.series, "time", "price", "volume", "ingested_at", "in_range"]
    history = pd.DataFrame(rows, columns=columns)
    for col in ("time", "ingested_at"):
        history[col] = pd.to_datetime(history[col], utc=True)
    history["price"] = history["price"].astype("float64")
    history["volume"] = history["volume"].astype("float64")
    return history


def rolling_z(values: pd.Series, groups: list[pd.Series] | pd.Series, config: ScoreConfig) -> pd.Series:
    """z of each value against the previous `window` values of its group (current excluded, ddof=0)."""
    grouped = values.groupby(groups, sort=False, dropna=False)
    prev = grouped.shift(1)
    roll = prev.groupby(groups, sort=False, dropna=False).rolling(
        config.window, min_periods=config.min_periods
    )
    mean = roll.mean().reset_index(level=list(range(roll.mean().index.nlevels - 1)), drop=True)
    std = roll.std(ddof=0).reset_index(level=list(range(roll.std(ddof=0).index.nlevels - 1)), drop=True)
    mean, std = mean.reindex(values.index), std.reindex(values.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values - mean) / std.where(std > 0)
    return z


@dataclass
class Scored:
    frame: pd.DataFrame  # the good rows with quality_score and is_anomaly set
    anomalies: pd.DataFrame  # series_key, time, metric, value, zscore, severity


def score_frame(
    dataset: str,
    good: pd.DataFrame,
    warnings: pd.Series,
    history: pd.DataFrame,
    *,
    now: datetime | None = None,
    config: ScoreConfig | None = None,
) -> Scored:
    """Quality score and anomaly flags of the batch's good rows (history: `load_history`'s frame)."""
    config = config or ScoreConfig()
    spec = SCORED[dataset]
    keys = list(spec.series)
    now_ts = pd.Timestamp(now or datetime.now(UTC)).tz_convert("UTC")

    batch = good[keys + ["time"]].copy()
    batch["price"] = _price(dataset, good)
    batch["volume"] = good["volume"].astype("float64") if "volume" in good else np.nan
    batch["_row"] = good.index
    past = history.loc[~history["in_range"].astype(bool)] if len(history) else history
    stored_in_range = history.loc[history["in_range"].astype(bool)] if len(history) else history
    # Stored neighbours inside the batch's range that the batch does not carry still shape the returns.
    if len(stored_in_range):
        merged = stored_in_range.merge(batch[keys + ["time"]], on=keys + ["time"], how="left", indicator=True)
        missing = merged.loc[merged["_merge"] == "left_only", stored_in_range.columns]
    else:
        missing = stored_in_range
    context = pd.concat([past, missing], ignore_index=True)[keys + ["time", "price", "volume"]]
    context["_row"] = -1
    for col in keys:
        if col in context and col in batch:
            context[col] = context[col].astype(batch[col].dtype)
    combined = pd.concat([context, batch], ignore_index=True).sort_values([*keys, "time"], kind="stable")
    combined = combined.reset_index(drop=True)
    groups = [combined[k] for k in keys]

    price = combined["price"].where(combined["price"] > 0)
    log_price = np.log(price)
    ret = log_price - log_price.groupby(groups, sort=False, dropna=False).shift(1)
    z_ret = rolling_z(ret, groups, config)
    z_vol = rolling_z(combined["volume"], groups, config)

    mine = combined["_row"].to_numpy() >= 0
    rows = combined.loc[mine, "_row"].to_numpy()
    z_ret_b = pd.Series(z_ret.to_numpy()[mine], index=rows).reindex(good.index)
    z_vol_b = pd.Series(z_vol.to_numpy()[mine], index=rows).reindex(good.index)
    ret_b = pd.Series(ret.to_numpy()[mine], index=rows).reindex(good.index)

    out = good.copy()
    components = {
        "completeness": _completeness(good, spec),
        "timeliness": _timeliness(good, history, spec, now_ts),
        "consistency": (1 - (z_ret_b.abs() - 3) / 3).clip(0, 1).fillna(1.0),
        "rules": (1 - 0.5 * warnings.reindex(good.index).fillna(0)).clip(0, 1),
    }
    score = sum(WEIGHTS[name] * comp for name, comp in components.items())
    out["quality_score"] = score.round(1).clip(0, 100).astype("float64")
    flagged = (z_ret_b.abs() > config.anomaly_z) | (z_vol_b.abs() > config.anomaly_z)
    out["is_anomaly"] = flagged.fillna(False).astype(bool)

    anomalies = []
    for metric, z, value in (
        ("return", z_ret_b, ret_b),
        ("volume", z_vol_b, batch["volume"].set_axis(good.index)),
    ):
        hit = z.abs() > config.anomaly_z
        if not hit.any():
            continue
        sub = good.loc[hit, keys + ["time"]]
        anomalies.append(
            pd.DataFrame(
                {
                    "series_key": [
                        {k: json_safe(v) for k, v in zip(keys, row, strict=True)}
                        for row in sub[keys].itertuples(index=False, name=None)
                    ],
                    "time": sub["time"].to_numpy(),
                    "metric": metric,
                    "value": value[hit].to_numpy(),
                    "zscore": z[hit].to_numpy(),
                    "severity": np.where(z[hit].abs() > config.black_swan_z, "black_swan", "anomaly"),
                },
                index=sub.index,
            )
        )
    found = (
        pd.concat(anomalies)
        if anomalies
        else pd.DataFrame(columns=["series_key", "time", "metric", "value", "zscore", "severity"])
    )
    return Scored(out, found)


def _completeness(good: pd.DataFrame, spec: SeriesSpec) -> pd.Series:
    cols = [c for c in spec.value_columns if c in good and good[c].notna().any()]
    if not cols:
        return pd.Series(1.0, index=good.index)
    return good[cols].notna().mean(axis=1)


def _timeliness(good: pd.DataFrame, history: pd.DataFrame, spec: SeriesSpec, now: pd.Timestamp) -> pd.Series:
    keys = [*spec.series, "time"]
    reference = pd.Series(now, index=good.index)
    if "ingested_at" in good:
        reference = good["ingested_at"].fillna(now)
    if len(history):
        stored = history.loc[history["in_range"].astype(bool), keys + ["ingested_at"]]
        if len(stored):
            first = (
                good[keys].reset_index().merge(stored, on=keys, how="left").set_index("index")["ingested_at"]
            )
            reference = first.reindex(good.index).fillna(reference)
    if spec.interval_column and spec.interval_column in good:
        closes = close_times(good["time"], good[spec.interval_column])
        grace = good[spec.interval_column].map(interval_seconds).astype("float64").clip(lower=60.0)
    else:
        closes = good["time"]
        grace = pd.Series(60.0, index=good.index)
    delay = (reference - closes).dt.total_seconds().clip(lower=0)
    with np.errstate(divide="ignore"):
        late = np.log10(np.maximum(delay / grace, 1.0)) / 3
    return (1 - late).clip(0, 1).fillna(1.0)


def write_anomalies(conn: sa.Connection, dataset: str, anomalies: pd.DataFrame, run_id: str | None) -> int:
    """Insert the batch's anomalies (skipping ones already recorded); returns rows inserted."""
    if anomalies.empty:
        return 0
    rows = [
        {
            "series_key": r.series_key,
            "time": json_safe(
                pd.Timestamp(r.time).tz_localize("UTC") if pd.Timestamp(r.time).tzinfo is None else r.time
            ),
            "metric": r.metric,
            "value": json_safe(r.value),
            "zscore": json_safe(r.zscore),
            "severity": r.severity,
        }
        for r in anomalies.itertuples(index=False)
    ]
    stmt = sql_text("common/quality_anomalies_insert").bindparams(sa.bindparam("rows", type_=sa.JSON))
    return int(conn.execute(stmt, {"rows": rows, "table_name": dataset, "run_id": run_id}).scalar() or 0)
