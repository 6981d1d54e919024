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
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from psycopg2 import sql as pgsql
from pyarrow import csv

from market_warehouse.resources import clock
from market_warehouse.resources.columns import kind_of
from market_warehouse.resources.models import Base
from market_warehouse.resources.quality.jsonsafe import json_safe
from market_warehouse.resources.quality.split import close_times, interval_seconds
from market_warehouse.resources.sqlfiles import sql_text

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
    # The other compared columns the history returns with the stored versions of the batch's range, so
    # that rows equal to their stored version need not be sent to the upsert (`upsert_frame(stored=...)`).
    stored_columns: tuple[str, ...] = ()


SCORED: dict[str, SeriesSpec] = {
    "ohlcv": SeriesSpec(
        ("exchange", "symbol", "interval", "price"),  # the price kind is part of the candle's series
        "common/quality_ohlcv_history",
        ("open", "high", "low", "close", "volume", "quote_volume", "trades_count", "vwap"),
        "interval",
        ("quality_score", "is_anomaly", "source"),
    ),
    "timeseries_data": SeriesSpec(
        ("source_id",),
        "common/quality_timeseries_history",
        ("value", "open", "high", "low", "close", "volume"),
        None,
        ("quality_score", "is_anomaly"),
    ),
}


def _price(dataset: str, frame: pd.DataFrame) -> pd.Series:
    """The value whose log returns are scored: close (generic series: close, else value)."""
    close = frame["close"].astype("float64") if "close" in frame else pd.Series(np.nan, index=frame.index)
    if dataset == "timeseries_data" and "value" in frame:
        close = close.fillna(frame["value"].astype("float64"))
    return close


# The warm-up read is first bounded to this many times the span of `window + 1` rows before the batch (one
# nominal interval per row, or the batch's own spacing for series without an interval), so it reads only
# the partitions near the batch; series left short of warm-up rows there (new series, long gaps) are read
# again without the bound, so the result is exactly the unbounded read's.
_WARMUP_SLACK = 2
_NO_BOUND = datetime(1, 1, 1, tzinfo=UTC)  # inside the timestamptz range, unlike datetime.min's year 1 naive


def load_history(
    conn: sa.Connection,
    dataset: str,
    frame: pd.DataFrame,
    config: ScoreConfig,
    *,
    bounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Stored rows of the batch's series: warm-up before the batch (`in_range` false) and stored versions
    of the batch's range (`in_range` true), with the compared columns of `SeriesSpec.stored_columns`,
    `series` (the row's series as a position in `series_bounds(dataset, frame)`) and `stored_nan` (a
    stored float is NaN rather than NULL: such a row is never taken as unchanged). `bounds`: the frame's
    `series_bounds` when the caller has them."""
    spec = SCORED[dataset]
    bounds = series_bounds(dataset, frame) if bounds is None else bounds
    history = _copy_query(conn, dataset, history_statement(conn, dataset, bounds, config))
    if _warmup_from(spec, bounds, config) > _NO_BOUND:
        series = history.column("series").to_numpy()
        in_range = history.column("in_range").to_numpy(zero_copy_only=False)
        warm = np.bincount(series[~in_range], minlength=len(bounds))
        short = np.flatnonzero(warm < config.window + 1)
        if len(short):  # their warm-up again, without the first bound (their stored versions are read)
            query = history_statement(
                conn, dataset, bounds.iloc[short], config, warmup_from=_NO_BOUND, with_range=False
            )
            again = _copy_query(conn, dataset, query)
            again = again.set_column(
                again.schema.get_field_index("series"),
                "series",
                pa.array(short[again.column("series").to_numpy()]),
            )
            keep = in_range | ~np.isin(series, short)
            history = pa.concat_tables([history.filter(pa.array(keep)), again])
    return _typed_history(history, spec, bounds)


def follows(
    dataset: str,
    earlier: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    earlier_bounds: pd.DataFrame | None = None,
    bounds: pd.DataFrame | None = None,
) -> bool:
    """Whether every series of `frame` that `earlier` also holds starts after `earlier`'s last row of it:
    then writing `earlier` changes only the warm-up of `frame`'s history, never its stored range.
    `earlier_bounds`, `bounds`: their `series_bounds` when the caller has them."""
    if earlier.empty or frame.empty:
        return True
    keys = list(SCORED[dataset].series)
    earlier_bounds = series_bounds(dataset, earlier) if earlier_bounds is None else earlier_bounds
    bounds = series_bounds(dataset, frame) if bounds is None else bounds
    both = earlier_bounds.merge(bounds, on=keys, suffixes=("_e", ""))
    return bool((both["max_e"] < both["min"]).all())


def with_written(
    dataset: str,
    history: pd.DataFrame,
    frame: pd.DataFrame,
    written: pd.DataFrame,
    config: ScoreConfig,
    *,
    bounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`load_history(…, frame, …)` as it reads once `written` is stored, from a `history` read before.

    `written` (typed rows of the previous batch, being written in another transaction) must precede
    `frame` in each common series (`follows`): it can then only add warm-up rows, and each series keeps
    the last `window + 1` stored rows before its start, as the query does. Only what the scores read of
    a warm-up row is filled (series, keys, time, value columns); its other columns stay missing.
    """
    spec = SCORED[dataset]
    keys = list(spec.series)
    bounds = series_bounds(dataset, frame) if bounds is None else bounds
    position = pd.MultiIndex.from_frame(bounds[keys]).get_indexer(pd.MultiIndex.from_frame(written[keys]))
    rows, series = _last_rows(written, position, config.window + 1)
    if not len(rows):
        return history
    added: dict[str, object] = {"series": series}
    for key in keys:
        added[key] = bounds[key].iloc[series].array
    added["time"] = rows["time"].dt.as_unit(history["time"].dt.unit).array
    for name in spec.value_columns:
        added[name] = (
            rows[name].to_numpy(dtype="float64", na_value=np.nan)
            if name in rows
            else np.full(len(rows), np.nan)
        )
    added["in_range"] = False
    added["stored_nan"] = False
    in_range = history["in_range"].to_numpy(dtype=bool)
    parts = [part for part in (history.loc[~in_range], pd.DataFrame(added)) if len(part)]
    merged = pd.concat(parts, ignore_index=True)
    order = np.lexsort((_micros(merged["time"]), merged["series"].to_numpy()))
    merged = merged.iloc[order]
    merged = merged[~merged.duplicated(["series", "time"], keep="last").to_numpy()]  # the written version
    merged = merged.groupby("series", sort=False).tail(config.window + 1)
    parts = [part for part in (merged, history.loc[in_range]) if len(part)]
    return pd.concat(parts, ignore_index=True)


def _last_rows(frame: pd.DataFrame, series: np.ndarray, count: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The last `count` distinct times of each series (`series`: a position per row, -1 for none) of
    `frame`, the later row of a repeated time kept, with their series: all a warm-up can take of them."""
    rows = np.flatnonzero(series >= 0)
    if not len(rows):
        return frame.iloc[:0], rows
    micros = _micros(frame["time"].iloc[rows])
    order = np.lexsort((micros, series[rows]))  # stable: a repeated time keeps the frame's order
    rows, ids, micros = rows[order], series[rows][order], micros[order]
    last = np.append((ids[1:] != ids[:-1]) | (micros[1:] != micros[:-1]), True)
    rows, ids = rows[last], ids[last]
    keep = np.searchsorted(ids, ids, side="right") - np.arange(len(ids)) <= count
    return frame.iloc[rows[keep]], ids[keep]


def series_bounds(dataset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Per series of the batch: its key, first and last time and row count."""
    keys = list(SCORED[dataset].series)
    return frame.groupby(keys, sort=False, dropna=False)["time"].agg(["min", "max", "count"]).reset_index()


def _warmup_from(spec: SeriesSpec, bounds: pd.DataFrame, config: ScoreConfig) -> datetime:
    """A first-guess lower time bound of the warm-up rows of every series of the batch (see above)."""
    if spec.interval_column:
        step = max((_seconds(v) for v in bounds[spec.interval_column].unique()), default=np.nan)
    else:  # the batch's own spacing, the widest of its series
        several = bounds[bounds["count"] > 1]
        spans = (several["max"] - several["min"]).dt.total_seconds() / (several["count"] - 1)
        step = float(spans.max()) if len(spans) else np.nan
    if not np.isfinite(step) or step <= 0:
        return _NO_BOUND
    try:
        lower = bounds["min"].min().to_pydatetime() - timedelta(
            seconds=step * (config.window + 1) * _WARMUP_SLACK
        )
    except OverflowError:
        return _NO_BOUND
    return max(lower, _NO_BOUND)


def history_statement(
    conn: sa.Connection,
    dataset: str,
    bounds: pd.DataFrame,
    config: ScoreConfig,
    *,
    warmup_from: datetime | None = None,
    with_range: bool = True,
) -> str:
    """The history query of the series in `bounds` (`series_bounds`) as one literal statement: COPY takes
    no parameters, and literal bounds let the planner prune partitions (chunks). `warmup_from` defaults
    to the first guess of `_warmup_from`; `with_range=False` reads the warm-up only."""
    spec = SCORED[dataset]
    if warmup_from is None:
        warmup_from = _warmup_from(spec, bounds, config)
    params: dict[str, object] = {
        "warmup": config.window + 1,
        "starts": [t.to_pydatetime() for t in bounds["min"]],
        "ends": [t.to_pydatetime() for t in bounds["max"]],
        "warmup_from": warmup_from,
        "last_start": bounds["min"].max().to_pydatetime(),
        "range_from": bounds["min"].min().to_pydatetime(),
        "range_to": bounds["max"].max().to_pydatetime(),
        "with_range": with_range,
    }
    if dataset == "ohlcv":
        params |= {k + "s": bounds[k].astype(str).tolist() for k in SCORED[dataset].series}
    else:
        params["source_ids"] = [int(v) for v in bounds["source_id"]]
    compiled = sql_text(spec.history_sql).compile(dialect=conn.dialect)
    with conn.connection.dbapi_connection.cursor() as cursor:
        return cursor.mogrify(str(compiled), compiled.construct_params(params)).decode()


def _typed_history(table: pa.Table, spec: SeriesSpec, bounds: pd.DataFrame) -> pd.DataFrame:
    """The history frame, built at once (a frame per batch: column by column costs more than the data)."""
    series = table.column("series").to_numpy()
    columns: dict[str, object] = {"series": series}
    for key in spec.series:  # the batch's own values and dtype
        columns[key] = bounds[key].iloc[series].array
    unit = bounds["min"].dtype.unit if isinstance(bounds["min"].dtype, pd.DatetimeTZDtype) else "us"
    for name, micros in (("time", "time_us"), ("ingested_at", "ingested_us")):
        times = pd.to_datetime(table.column(micros).to_numpy(), unit="us", utc=True)
        columns[name] = (times.as_unit(unit) if name == "time" else times).array
    for name in spec.value_columns:
        columns[name] = table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
    stored = table.select(list(spec.stored_columns)).to_pandas(types_mapper=_STORED_TYPES.get)
    for name in spec.stored_columns:
        columns[name] = stored[name].array
    columns["in_range"] = table.column("in_range").to_numpy(zero_copy_only=False)
    columns["stored_nan"] = table.column("stored_nan").to_numpy(zero_copy_only=False)
    return pd.DataFrame(columns)


_STORED_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _copy_query(conn: sa.Connection, dataset: str, query: str) -> pa.Table:
    """Run the literal history `query` through COPY ... TO STDOUT (CSV) and parse it with pyarrow, adding
    `stored_nan` (a stored float is NaN, which PostgreSQL tells from NULL).

    Row-by-row fetching through the driver builds a Python datetime per value and costs seconds per 100k
    rows; COPY with epoch-microsecond columns and pyarrow's CSV reader costs milliseconds. Integers are
    read as int64 (exact), other numbers as float64 (a float4 prints the shortest text that reads back
    to the same float4).
    """
    spec = SCORED[dataset]
    table_columns = Base.metadata.tables[dataset].c
    types = {"series": pa.int64(), "time_us": pa.int64(), "ingested_us": pa.int64(), "in_range": pa.bool_()}
    for name in (*spec.value_columns, *spec.stored_columns):
        kind = kind_of(table_columns[name])
        types[name] = {"text": pa.string(), "bool": pa.bool_()}.get(
            kind, pa.int64() if kind.startswith("int") else pa.float64()
        )
    raw = conn.connection.dbapi_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor:
        copy = pgsql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(pgsql.SQL(query))
        cursor.copy_expert(copy.as_string(raw), buffer)
    buffer.seek(0)
    table = csv.read_csv(
        buffer,
        convert_options=csv.ConvertOptions(column_types=types, true_values=["t"], false_values=["f"]),
    )
    nan = np.zeros(table.num_rows, dtype=bool)
    for name, type_ in types.items():
        if type_ == pa.float64():
            nan |= pc.fill_null(pc.is_nan(table[name]), False).to_numpy(zero_copy_only=False)
    return table.append_column("stored_nan", pa.array(nan))


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


def _history_gids(history: pd.DataFrame, keys: list[str], id_table: pd.DataFrame) -> np.ndarray:
    """The batch's series id (`_series_ids`) of each history row, -1 for a series the batch lacks. Rows
    of `load_history` name their series by position (`series`): only one row per series is matched by key."""
    if not len(history):
        return np.zeros(0, dtype=np.int64)
    if "series" in history:
        series = history["series"].to_numpy()
    else:  # a history frame built elsewhere (tests): number its series here
        series = history.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(series, return_index=True)[1]
    named = history.iloc[first][keys].assign(_series=series[first]).merge(id_table, on=keys, how="left")
    lookup = np.full(int(series.max()) + 1, -1, dtype=np.int64)
    lookup[named["_series"].to_numpy()] = named["_gid"].fillna(-1).to_numpy(dtype=np.int64)
    return lookup[series]


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
    in_range = history["in_range"].to_numpy(dtype=bool) if len(history) else np.zeros(0, dtype=bool)
    hist_gid = _history_gids(history, keys, id_table)
    stored = history.loc[in_range]
    # Each good row's stored version (position in `stored`, -1 when new), and the stored rows inside the
    # batch's range that the batch does not carry: they still neighbour it.
    position, carried = np.full(len(good), -1), np.zeros(len(stored), dtype=bool)
    if len(stored):
        stored_key = pd.MultiIndex.from_arrays([hist_gid[in_range], _micros(stored["time"])])
        good_key = pd.MultiIndex.from_arrays([gid, _micros(good["time"])])
        position, carried = stored_key.get_indexer(good_key), good_key.get_indexer(stored_key) >= 0
    context_rows = np.flatnonzero(hist_gid >= 0)
    context_rows = context_rows[~in_range[context_rows]]
    extra = np.flatnonzero(in_range)[~carried & (hist_gid[in_range] >= 0)]
    context_rows = np.concatenate([context_rows, extra])
    if len(context_rows):
        context = history.iloc[context_rows]
        context = pd.DataFrame(
            {
                "_gid": hist_gid[context_rows],
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
            "timeliness": _timeliness(good, stored, position, spec, now_ts),
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


def _timeliness(
    good: pd.DataFrame, stored: pd.DataFrame, position: np.ndarray, spec: SeriesSpec, now: pd.Timestamp
) -> pd.Series:
    """Level of the delay between the candle's close and when this version of the row arrived.

    The arrival is the stored `ingested_at` when the stored row (`stored.iloc[position]`, -1: none)
    carries the same values (a re-run), else the frame's `ingested_at` when the source says when it
    fetched, else now.
    """
    now_us = now.value // 1_000  # Timestamp.value is nanoseconds whatever the unit
    if "ingested_at" in good:
        arrival = _micros(good["ingested_at"].fillna(now))
    else:
        arrival = np.full(len(good), now_us, dtype="int64")
    known = np.flatnonzero(position >= 0)
    if len(known):
        same = np.ones(len(known), dtype=bool)
        rows = stored.iloc[position[known]]
        for c in (c for c in spec.value_columns if c in good):
            a = good[c].to_numpy(dtype="float64", na_value=np.nan)[known]
            b = rows[c].to_numpy(dtype="float64", na_value=np.nan)
            same &= (a == b) | (np.isnan(a) & np.isnan(b))
        arrival[known[same]] = _micros(rows["ingested_at"])[same]
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
