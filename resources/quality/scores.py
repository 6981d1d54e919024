"""Quality score (0-100) per stored row and rolling z-score anomalies per series, vectorized per batch.

Computed in the pipeline, not by per-row triggers: a trigger would cost the bulk-load rate.

Score = 30 x completeness + 10 x timeliness + 30 x consistency + 30 x rules, each component in [0, 1]:

* completeness: share of non-null values among the value columns the row's series sends (a column its
  series never fills in the batch is not held against it);
* timeliness: delay between the candle's close and the arrival of this version of the row, in units of a
  grace period (one interval, at least 60 s): <= 1 -> 1, <= 10 -> 0.75, <= 100 -> 0.5, <= 1000 -> 0.25,
  else 0. A row the warehouse already holds with the same values keeps its stored `ingested_at` as the
  arrival, so re-running a partition scores it the same and writes nothing;
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

import io
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from psycopg2 import sql as pgsql

from resources import clock
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
    """The value whose log returns are scored: close (generic series: close, else value)."""
    close = frame["close"].astype("float64") if "close" in frame else pd.Series(np.nan, index=frame.index)
    if dataset == "timeseries_data" and "value" in frame:
        close = close.fillna(frame["value"].astype("float64"))
    return close


def load_history(conn: sa.Connection, dataset: str, frame: pd.DataFrame, config: ScoreConfig) -> pd.DataFrame:
    """Stored rows of the batch's series: warm-up before the batch (`in_range` false) and stored versions
    of the batch's range (`in_range` true)."""
    spec = SCORED[dataset]
    keys = list(spec.series)
    bounds = frame.groupby(keys, sort=False, dropna=False)["time"].agg(["min", "max"]).reset_index()
    params: dict[str, object] = {
        "warmup": config.window + 1,
        "starts": [t.to_pydatetime() for t in bounds["min"]],
        "ends": [t.to_pydatetime() for t in bounds["max"]],
    }
    if dataset == "ohlcv":
        params |= {k + "s": bounds[k].astype(str).tolist() for k in ("exchange", "symbol", "interval")}
    else:
        params["source_ids"] = [int(v) for v in bounds["source_id"]]
    history = _copy_query(conn, sql_text(spec.history_sql), params, keys, spec.value_columns)
    history["time"] = pd.to_datetime(history.pop("time_us"), unit="us", utc=True)
    history["ingested_at"] = pd.to_datetime(history.pop("ingested_us"), unit="us", utc=True)
    if isinstance(frame["time"].dtype, pd.DatetimeTZDtype):
        history["time"] = history["time"].dt.as_unit(frame["time"].dtype.unit)
    for col in spec.value_columns:
        history[col] = pd.to_numeric(history[col], errors="coerce").astype("float64")
    history["in_range"] = history["in_range"].astype(bool)
    for col in keys:
        if col in frame:
            history[col] = history[col].astype(frame[col].dtype)
    return history


def _copy_query(
    conn: sa.Connection,
    stmt: sa.TextClause,
    params: dict,
    text_columns: list[str],
    float_columns: tuple[str, ...],
) -> pd.DataFrame:
    """Run `stmt` through COPY ... TO STDOUT (CSV) and parse it with pyarrow.

    Row-by-row fetching through the driver builds a Python datetime per value and costs seconds per 100k
    rows; COPY with epoch-microsecond columns and pyarrow's CSV reader costs milliseconds.
    """
    import pyarrow as pa
    from pyarrow import csv

    compiled = stmt.compile(dialect=conn.dialect)
    raw = conn.connection.dbapi_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor:
        query = cursor.mogrify(str(compiled), compiled.construct_params(params)).decode()
        copy = pgsql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(pgsql.SQL(query))
        cursor.copy_expert(copy.as_string(raw), buffer)
    buffer.seek(0)
    types = {c: pa.string() for c in text_columns if c != "source_id"}
    types |= {c: pa.float64() for c in float_columns}
    types |= {
        "time_us": pa.int64(),
        "ingested_us": pa.int64(),
        "in_range": pa.bool_(),
        "source_id": pa.int64(),
    }
    table = csv.read_csv(
        buffer,
        convert_options=csv.ConvertOptions(column_types=types, true_values=["t"], false_values=["f"]),
    )
    return table.to_pandas()


def rolling_z(values: pd.Series, gid: np.ndarray, config: ScoreConfig) -> pd.Series:
    """z of each value against the previous `window` values of its group (current excluded, ddof=0).

    `values` must be sorted by group id `gid` then time, with a RangeIndex.
    """
    prev = values.groupby(gid, sort=False).shift(1)
    roll = prev.groupby(gid, sort=False).rolling(config.window, min_periods=config.min_periods)
    mean = roll.mean().droplevel(0).reindex(values.index)
    std = roll.std(ddof=0).droplevel(0).reindex(values.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (values - mean) / std.where(std > 0)


def _series_ids(good: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer id per row's series and the (keys -> id) table: string keys are factorized once."""
    gid = good.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(gid, return_index=True)[1]
    table = good.iloc[first][keys].reset_index(drop=True).assign(_gid=gid[first])
    return gid, table


@dataclass
class Scored:
    frame: pd.DataFrame  # the good rows with quality_score and is_anomaly set
    anomalies: pd.DataFrame  # series_key, time, metric, value, zscore, severity
    components: pd.DataFrame  # completeness, timeliness, consistency, rules, z_return, z_volume per row


ANOMALY_COLUMNS = ["series_key", "time", "metric", "value", "zscore", "severity"]


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
    now_ts = pd.Timestamp(now or clock.now()).tz_convert("UTC")
    if good.empty:
        empty = pd.DataFrame(columns=ANOMALY_COLUMNS)
        return Scored(good.assign(quality_score=pd.Series(dtype="float64"), is_anomaly=False), empty, empty)

    gid, id_table = _series_ids(good, keys)
    batch = pd.DataFrame(
        {
            "_gid": gid,
            "time": good["time"].array,
            "price": _price(dataset, good).to_numpy(),
            "volume": good["volume"].to_numpy(dtype="float64") if "volume" in good else np.nan,
            "_row": np.arange(len(good)),
        }
    )
    if len(history):
        past = history.loc[~history["in_range"]]
        stored = history.loc[history["in_range"]]
    else:
        past = stored = pd.DataFrame(columns=[*keys, "time", "in_range", "ingested_at"])
    # Stored rows inside the batch's range that the batch does not carry still neighbour it.
    if len(stored):
        flags = stored[[*keys, "time"]].merge(good[[*keys, "time"]], how="left", indicator=True)["_merge"]
        extra = stored.loc[(flags == "left_only").to_numpy()]
    else:
        extra = stored
    if len(past) or len(extra):
        context = pd.concat([past, extra], ignore_index=True).merge(id_table, on=keys, how="inner")
        context = pd.DataFrame(
            {
                "_gid": context["_gid"].to_numpy(),
                "time": pd.to_datetime(context["time"], utc=True).array,
                "price": _price(dataset, context).to_numpy(),
                "volume": context["volume"].to_numpy(dtype="float64"),
                "_row": -1,
            }
        )
        combined = pd.concat([context, batch], ignore_index=True)
    else:
        combined = batch
    times = combined["time"]
    times = times.dt.as_unit("ns") if hasattr(times, "dt") else pd.to_datetime(times, utc=True)
    order_idx = np.lexsort((times.astype("int64").to_numpy(), combined["_gid"].to_numpy()))
    combined = combined.iloc[order_idx].reset_index(drop=True)
    groups = combined["_gid"].to_numpy()

    log_price = np.log(combined["price"].where(combined["price"] > 0))
    ret = log_price - log_price.groupby(groups, sort=False, dropna=False).shift(1)
    z_ret = rolling_z(ret, groups, config)
    z_vol = rolling_z(combined["volume"].astype("float64"), groups, config)

    mine = (combined["_row"] >= 0).to_numpy()
    order = combined.loc[mine, "_row"].to_numpy()

    def back(values: pd.Series) -> pd.Series:
        out = np.full(len(good), np.nan)
        out[order] = values.to_numpy()[mine]
        return pd.Series(out, index=good.index)

    z_ret_b, z_vol_b, ret_b = back(z_ret), back(z_vol), back(ret)
    components = pd.DataFrame(
        {
            "completeness": _completeness(good, spec, gid),
            "timeliness": _timeliness(good, stored, spec, now_ts),
            "consistency": (1 - (z_ret_b.abs() - 3) / 3).clip(0, 1).fillna(1.0),
            "rules": (1 - 0.5 * warnings.reindex(good.index).fillna(0)).clip(0, 1),
        },
        index=good.index,
    )
    score = sum(WEIGHTS[name] * components[name] for name in WEIGHTS)
    out = good.copy()
    out["quality_score"] = score.round(1).clip(0, 100).astype("float64")
    flagged = (z_ret_b.abs() > config.anomaly_z) | (z_vol_b.abs() > config.anomaly_z)
    out["is_anomaly"] = flagged.to_numpy(dtype=bool)
    components["z_return"] = z_ret_b
    components["z_volume"] = z_vol_b

    found = []
    volume_b = pd.Series(batch["volume"].to_numpy(), index=good.index)
    for metric, z, value in (("return", z_ret_b, ret_b), ("volume", z_vol_b, volume_b)):
        hit = (z.abs() > config.anomaly_z).to_numpy()
        if not hit.any():
            continue
        sub = good.loc[hit, keys]
        found.append(
            pd.DataFrame(
                {
                    "series_key": [
                        {k: json_safe(v) for k, v in zip(keys, row, strict=True)}
                        for row in sub.itertuples(index=False, name=None)
                    ],
                    "time": good.loc[hit, "time"].to_numpy(),
                    "metric": metric,
                    "value": value[hit].to_numpy(),
                    "zscore": z[hit].to_numpy(),
                    "severity": np.where(z[hit].abs() > config.black_swan_z, "black_swan", "anomaly"),
                },
                index=sub.index,
            )
        )
    anomalies = pd.concat(found) if found else pd.DataFrame(columns=ANOMALY_COLUMNS)
    return Scored(out, anomalies, components)


def _completeness(good: pd.DataFrame, spec: SeriesSpec, gid: np.ndarray) -> pd.Series:
    """Share of non-null values among the columns the row's series sends somewhere in the batch."""
    cols = [c for c in spec.value_columns if c in good]
    if not cols:
        return pd.Series(1.0, index=good.index)
    present = good[cols].notna()
    sent = present.groupby(gid, sort=False).transform("any")
    n_sent = sent.sum(axis=1)
    ratio = (present & sent).sum(axis=1) / n_sent.where(n_sent > 0)
    return ratio.fillna(1.0)


# Timeliness by ingest delay in units of the grace period (one interval, at least 60 s). Levels rather than
# a continuous curve: an update refreshes `ingested_at`, and a level that only ever goes down converges,
# so re-running a partition writes nothing.
TIMELINESS_LEVELS = ((1.0, 1.0), (10.0, 0.75), (100.0, 0.5), (1000.0, 0.25))


def _timeliness(good: pd.DataFrame, stored: pd.DataFrame, spec: SeriesSpec, now: pd.Timestamp) -> pd.Series:
    """Level of the delay between the candle's close and when this version of the row arrived.

    The arrival is the stored `ingested_at` when the stored row carries the same values (a re-run),
    else the frame's `ingested_at` when the source says when it fetched, else now.
    """
    keys = [*spec.series, "time"]
    now_us = now.value // 1_000  # Timestamp.value is nanoseconds whatever the unit
    if "ingested_at" in good:
        arrival = _micros(good["ingested_at"].fillna(now))
    else:
        arrival = np.full(len(good), now_us, dtype="int64")
    if len(stored):
        cols = [c for c in spec.value_columns if c in good]
        left = good[keys + cols].assign(_pos=np.arange(len(good)))
        joined = left.merge(stored[keys + cols + ["ingested_at"]], on=keys, how="inner", suffixes=("", "_db"))
        if len(joined):
            same = np.ones(len(joined), dtype=bool)
            for c in cols:
                a = joined[c].to_numpy(dtype="float64", na_value=np.nan)
                b = joined[c + "_db"].to_numpy(dtype="float64", na_value=np.nan)
                same &= (a == b) | (np.isnan(a) & np.isnan(b))
            kept = joined.loc[same]
            arrival[kept["_pos"].to_numpy()] = _micros(kept["ingested_at"])
    if spec.interval_column and spec.interval_column in good:
        closes = close_times(good["time"], good[spec.interval_column])
        codes, uniques = pd.factorize(good[spec.interval_column])
        nominal = np.append(np.array([_seconds(v) for v in uniques], dtype="float64"), np.nan)[codes]
        grace = pd.Series(nominal, index=good.index).clip(lower=60.0)
    else:
        closes = good["time"]
        grace = pd.Series(60.0, index=good.index)
    delay = np.maximum(arrival - _micros(closes), 0) / 1e6
    ratio = delay / grace.to_numpy()
    level = np.zeros(len(good))
    for limit, value in reversed(TIMELINESS_LEVELS):
        level = np.where(ratio <= limit, value, level)
    return pd.Series(level, index=good.index)


def _micros(times: pd.Series) -> np.ndarray:
    """Epoch microseconds of a tz-aware series, without going through Python objects (NaT -> min int)."""
    return times.dt.as_unit("us").astype("int64").to_numpy()


def _seconds(interval: object) -> float:
    try:
        return interval_seconds(str(interval))
    except ValueError:
        return np.nan


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


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
