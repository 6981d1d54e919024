"""Derived assets: features, forecasts and their accuracy, the reference strategy's signals and backtest,
equity curve and risk snapshots — each with its lineage row.

Every asset is partitioned by UTC day like the market data and backfilled in a single run that walks its
window day by day in order (so risk for day D sees the equity of the days before it). The computations live
in `resources/analytics/`; this module reads the warehouse through the `warehouse` resource, writes through
the loaders, and records for each day a `lineage` row (inputs with their runs and data versions, rows in
and out, code version) and Dagster metadata (column schema, column lineage, row counts, plots).

The data version of a materialization is a hash of the rows it owns, so equal content has an equal
version whichever run wrote it. Plots are PNGs (matplotlib, Agg) embedded as base64 in markdown metadata,
which the Dagster UI renders.
"""

# No `from __future__ import annotations`: Dagster reads resource types from the signatures.
import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from pipelines.partitions import DAILY, SINGLE_RUN_BACKFILL, WAREHOUSE_POOL
from pipelines.table_metadata import table_schema
from resources import clock
from resources.analytics import accuracy, backtest, features, forecasting, lineage, risk, strategy
from resources.analytics.backtest import Series
from resources.dagster_resources import WarehouseResource
from resources.intervals import interval_to_timedelta
from resources.models import Base, Feature, Forecast, MlModel, Ohlcv
from resources.warehouse.load import load_frame

GROUP = "derived"
OHLCV = "ohlcv"
FILES = "historical_files"
# Inputs recorded per upstream day are capped; a longer read (a replay from inception) adds a range entry.
MAX_DAY_ENTRIES = 31
CODE_VERSIONS = {
    "features": "1",
    "forecasts": f"1-{forecasting.CODE_VERSION}",
    "forecast_accuracy": "1",
    "trading_signals": "1",
    "backtest": "1",
    "equity_curve": "1",
    "risk_metrics": "1",
}


class AnalyticsResource(dg.ConfigurableResource):
    """Settings shared by the derived assets (one place, so signals, backtest, equity and risk agree)."""

    feature_set: str = features.CORE_V1.name
    forecast_intervals: list[str] = ["1h"]
    forecast_models: list[str] = list(forecasting.MODEL_KINDS)
    forecast_horizon: int = 24
    forecast_training_bars: int = 500
    strategy_name: str = "sma_cross"
    strategy_intervals: list[str] = ["1h"]
    strategy_inception: str = "2024-01-01"  # the book starts trading here; replays start here
    fast: int = 10
    slow: int = 30
    stop_loss: float = 0.02
    take_profit: float = 0.04
    fee_rate: float = 0.001
    slippage_bps: float = 5.0
    initial_capital: float = 10_000.0  # per series traded
    risk_lookback_days: int = 30
    daily_loss_limit: float = 0.05

    def feature_set_def(self) -> features.FeatureSet:
        if self.feature_set not in features.FEATURE_SETS:
            raise dg.Failure(
                f"unknown feature set {self.feature_set!r}: known {sorted(features.FEATURE_SETS)}"
            )
        return features.FEATURE_SETS[self.feature_set]

    def forecast_params(self) -> forecasting.ForecastParams:
        return forecasting.ForecastParams(
            horizon=self.forecast_horizon, training_bars=self.forecast_training_bars
        )

    def strategy_params(self) -> strategy.StrategyParams:
        return strategy.StrategyParams(
            name=self.strategy_name,
            fast=self.fast,
            slow=self.slow,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            fee_rate=self.fee_rate,
            slippage_bps=self.slippage_bps,
            initial_capital=self.initial_capital,
        )

    def risk_params(self) -> risk.RiskParams:
        return risk.RiskParams(lookback_days=self.risk_lookback_days, daily_loss_limit=self.daily_loss_limit)

    def inception(self) -> datetime:
        return datetime.fromisoformat(self.strategy_inception).replace(tzinfo=UTC)


# --- shared helpers -----------------------------------------------------------------------------------------


def _deps(mapping: dict[str, list[str]]) -> dg.TableColumnLineage:
    """{"column": ["asset.column", ...]} -> Dagster column lineage."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey(a.split(".")[0]), column_name=a.split(".")[1])
                for a in srcs
            ]
            for column, srcs in mapping.items()
        }
    )


_CANDLE = ["ohlcv.open", "ohlcv.high", "ohlcv.low", "ohlcv.close", "ohlcv.volume"]
COLUMN_LINEAGE = {
    "features": {
        "log_return": ["ohlcv.close"],
        "volatility": ["ohlcv.close"],
        "rsi": ["ohlcv.close"],
        "macd": ["ohlcv.close"],
        "macd_signal": ["ohlcv.close"],
        "macd_hist": ["ohlcv.close"],
        "bb_upper": ["ohlcv.close"],
        "bb_middle": ["ohlcv.close"],
        "bb_lower": ["ohlcv.close"],
        "atr": ["ohlcv.high", "ohlcv.low", "ohlcv.close"],
        "vwap": ["ohlcv.high", "ohlcv.low", "ohlcv.close", "ohlcv.volume"],
        "volume_zscore": ["ohlcv.volume"],
        "time": ["ohlcv.time"],
    },
    "forecasts": {
        c: ["ohlcv.close", "ohlcv.time"] for c in ["point", "lower_80", "upper_80", "lower_95", "upper_95"]
    },
    "forecast_accuracy": {
        "actual": ["ohlcv.close"],
        "error": ["ohlcv.close", "forecasts.point"],
        "ml_models.metrics": ["forecasts.point", "forecasts.lower_80", "forecasts.upper_95", "ohlcv.close"],
    },
    "trading_signals": {
        "signal_type": ["ohlcv.close"],
        "strength": ["ohlcv.close"],
        "entry_price": ["ohlcv.close"],
        "execution_price": ["ohlcv.open"],
        "exit_price": ["ohlcv.open", "ohlcv.low", "ohlcv.high"],
        "realized_pnl": _CANDLE,
    },
    "backtest": {
        "trade_history.price": ["ohlcv.open", "ohlcv.low", "ohlcv.high", "trading_signals.signal_type"],
        "trade_history.signal_id": ["trading_signals.id"],
        "backtest_results.sharpe_ratio": ["ohlcv.close", "trading_signals.signal_type"],
        "backtest_results.final_equity": ["ohlcv.close", "trading_signals.realized_pnl"],
    },
    "equity_curve": {
        "cash": ["backtest.price", "backtest.quantity", "backtest.fees"],
        "positions_value": ["backtest.quantity", "ohlcv.close"],
        "equity": ["backtest.price", "backtest.quantity", "backtest.fees", "ohlcv.close"],
    },
    "risk_metrics": {
        "var_95": ["equity_curve.equity"],
        "cvar_95": ["equity_curve.equity"],
        "var_99": ["equity_curve.equity"],
        "cvar_99": ["equity_curve.equity"],
        "sharpe_ratio": ["equity_curve.equity"],
        "max_drawdown": ["equity_curve.equity"],
        "gross_exposure": ["backtest.quantity", "ohlcv.close"],
        "largest_position": ["backtest.quantity", "ohlcv.close"],
        "daily_pnl": ["equity_curve.equity"],
    },
}
TABLE_OF_ASSET = {
    "features": "features",
    "forecasts": "forecasts",
    "forecast_accuracy": "forecasts",
    "trading_signals": "trading_signals",
    "backtest": "backtest_results",
    "equity_curve": "equity_curve",
    "risk_metrics": "risk_metrics",
}


def _days(context: dg.AssetExecutionContext) -> Iterator[tuple[datetime, datetime, str]]:
    """UTC days of the run's partition window, in order: a backfill of N days is one run."""
    window = context.partition_time_window
    day = pd.Timestamp(window.start).tz_convert(UTC)
    end = pd.Timestamp(window.end).tz_convert(UTC)
    while day < end:
        nxt = min(day + pd.Timedelta(days=1), end)
        yield day.to_pydatetime(), nxt.to_pydatetime(), day.strftime("%Y-%m-%d")
        day = nxt


def _source_entries(
    context: dg.AssetExecutionContext, asset_key: str, start: datetime, end: datetime
) -> list[dict]:
    """Inputs from a source asset: each daily partition read, with the run and data version Dagster
    recorded for it (capped to the last MAX_DAY_ENTRIES days, plus one entry naming the whole range)."""
    days = lineage.days_between(start, end)
    entries = []
    if len(days) > MAX_DAY_ENTRIES:
        entries.append({"asset_key": asset_key, "partition_range": [days[0], days[-1]], "days": len(days)})
        days = days[-MAX_DAY_ENTRIES:]
    for day in days:
        entries.append(
            {"asset_key": asset_key, "partition": day, **_dagster_version(context, asset_key, day)}
        )
    return entries


def _files_entry(context: dg.AssetExecutionContext) -> list[dict]:
    """The landed-files asset (unpartitioned) if it was ever materialized: candles may come from files."""
    info = _dagster_version(context, FILES, None)
    return [{"asset_key": FILES, "partition": None, **info}] if info["run_id"] else []


def _dagster_version(context: dg.AssetExecutionContext, asset_key: str, partition: str | None) -> dict:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset_key), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    if not records:  # read from the warehouse, but not materialized by Dagster (e.g. loaded by a script)
        return {"data_version": None, "run_id": None, "materialized": False}
    rec = records[0]
    tags = (rec.asset_materialization.tags if rec.asset_materialization else None) or {}
    return {
        "data_version": tags.get("dagster/data_version"),
        "run_id": rec.run_id,
        "storage_id": rec.storage_id,
    }


def _derived_entries(conn: sa.Connection, asset_key: str, days: list[str]) -> list[dict]:
    return [lineage.derived_input(conn, asset_key, day) for day in days[-MAX_DAY_ENTRIES:]]


@dataclass
class DayOutcome:
    key: str
    data_version: str
    rows_in: int
    rows_out: int
    written: int


def _record(
    conn: sa.Connection,
    context: dg.AssetExecutionContext,
    asset: str,
    key: str,
    upstream: list[dict],
    data_version: str,
    rows_in: int,
    rows_out: int,
    metadata: dict,
) -> None:
    lineage.record(
        conn,
        lineage.LineageRecord(
            asset_key=asset,
            partition_key=key,
            run_id=context.run.run_id,
            code_version=CODE_VERSIONS[asset],
            data_version=data_version,
            upstream=upstream,
            rows_in=rows_in,
            rows_out=rows_out,
            metadata={"table": TABLE_OF_ASSET[asset], **metadata},
        ),
    )


def _result(
    asset: str, outcomes: list[DayOutcome], row_count: int, extra: dict | None = None
) -> dg.MaterializeResult:
    version = lineage.content_version([{"day": o.key, "version": o.data_version} for o in outcomes])
    metadata = {
        "dagster/row_count": row_count,
        "dagster/column_lineage": _deps(COLUMN_LINEAGE[asset]),
        "rows_in": sum(o.rows_in for o in outcomes),
        "rows_out": sum(o.rows_out for o in outcomes),
        "rows_written": sum(o.written for o in outcomes),
        "data_versions": dg.MetadataValue.json({o.key: o.data_version for o in outcomes}),
        **(extra or {}),
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))


def _count(conn: sa.Connection, table: str, time_column: str, start: datetime, end: datetime, *where) -> int:
    t = Base.metadata.tables[table]
    query = (
        sa.select(sa.func.count())
        .select_from(t)
        .where(t.c[time_column] >= start, t.c[time_column] < end, *where)
    )
    return int(conn.scalar(query))


def _asset(name: str, description: str, deps: list, kinds: set[str]):
    return dg.asset(
        name=name,
        group_name=GROUP,
        description=description,
        deps=deps,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=WAREHOUSE_POOL,
        code_version=CODE_VERSIONS[name],
        kinds=kinds,
        metadata={
            "dagster/table_name": f"public.{TABLE_OF_ASSET[name]}",
            "dagster/column_schema": table_schema(TABLE_OF_ASSET[name]),
        },
    )


def _png_markdown(fig, alt: str) -> dg.MetadataValue:
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 3))


# --- features ----------------------------------------------------------------------------------------------


@_asset(
    "features",
    "Technical features per candle (log return, volatility, RSI, MACD, Bollinger, ATR, VWAP, volume z-score), "
    "computed per day with enough warm-up history to equal a whole-series computation.",
    deps=[dg.AssetKey(OHLCV), dg.AssetKey(FILES)],
    kinds={"talib", "pandas", "postgres"},
)
def features_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, fs = warehouse.engine(), analytics.feature_set_def()
    outcomes, row_count = [], 0
    for day, nxt, key in _days(context):
        with engine.connect() as conn:
            frames, read = [], []
            for series in features.series_in_window(conn, day, nxt):
                frame, candles = features.features_for_window(conn, series, day, nxt, fs)
                frames.append(frame)
                read.append(candles)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        loaded = load_frame(
            engine,
            "features",
            frame,
            run_id=context.run.run_id,
            partition_key=key,
            source=f"derived:{fs.name}",
        )
        first = min((c["time"].iloc[0] for c in read if len(c)), default=day)
        rows_in = sum(len(c) for c in read)
        version = lineage.content_version(frame)
        upstream = _source_entries(context, OHLCV, first, nxt) + _files_entry(context)
        with engine.begin() as conn:
            _record(
                conn,
                context,
                "features",
                key,
                upstream,
                version,
                rows_in,
                len(frame),
                {"feature_set": fs.describe(), "series": len(frames), "quarantined": loaded.quarantined},
            )
            row_count += _count(conn, "features", "time", day, nxt, Feature.feature_set == fs.name)
        outcomes.append(DayOutcome(key, version, rows_in, len(frame), loaded.inserted + loaded.updated))
    return _result(
        "features",
        outcomes,
        row_count,
        {"feature_set": dg.MetadataValue.json(fs.describe()), "warmup_bars": features.warmup_bars(fs.params)},
    )


# --- forecasts and accuracy ---------------------------------------------------------------------------------


@_asset(
    "forecasts",
    "Close forecasts per series (naive, ETS, ARIMA) with 80/95 % intervals, each run registered in ml_models.",
    deps=[dg.AssetKey(OHLCV), dg.AssetKey(FILES)],
    kinds={"statsmodels", "pandas", "postgres"},
)
def forecasts_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, params = warehouse.engine(), analytics.forecast_params()
    kinds = tuple(analytics.forecast_models)
    outcomes, row_count, model_runs = [], 0, 0
    for day, nxt, key in _days(context):
        with engine.connect() as conn:
            chosen = [
                s for s in features.series_in_window(conn, day, nxt) if s[2] in analytics.forecast_intervals
            ]
            inputs = {
                s: features.read_candles(conn, s, day, nxt, warmup=params.training_bars) for s in chosen
            }
        runs = [
            run
            for s, candles in inputs.items()
            for run in forecasting.forecast_series(candles, s, params, kinds)
        ]
        with engine.begin() as conn:
            ids = [forecasting.register_run(conn, run) for run in runs]
        model_runs += len(runs)
        rows = [forecasting.forecast_rows(run, model_id) for run, model_id in zip(runs, ids, strict=True)]
        frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        loaded = load_frame(
            engine,
            "forecasts",
            frame,
            run_id=context.run.run_id,
            partition_key=key,
            source="derived:forecasts",
        )
        registry = [{"name": r.name, "version": r.version, "params": r.params} for r in runs]
        version = lineage.content_version(frame.drop(columns=["model_id"], errors="ignore"), registry)
        used = [c.tail(params.training_bars) for c in inputs.values() if len(c)]
        first = min((c["time"].iloc[0] for c in used), default=day)
        rows_in = sum(len(c) for c in used)
        upstream = _source_entries(context, OHLCV, first, nxt) + _files_entry(context)
        with engine.begin() as conn:
            _record(
                conn,
                context,
                "forecasts",
                key,
                upstream,
                version,
                rows_in,
                len(frame),
                {
                    "model_ids": ids,
                    "models": [r.name for r in runs],
                    "params": params.__dict__ | {"kinds": kinds},
                },
            )
            row_count += _count(
                conn,
                "forecasts",
                "generated_at",
                day + timedelta(microseconds=1),
                nxt + timedelta(microseconds=1),
            )
        outcomes.append(DayOutcome(key, version, rows_in, len(frame), loaded.inserted + loaded.updated))
    return _result("forecasts", outcomes, row_count, {"model_runs": model_runs})


@_asset(
    "forecast_accuracy",
    "Fills forecasts' actuals from the candles of the day and scores every model run touched "
    "(MAE, MAPE, RMSE, bias, 80/95 % coverage, skill vs the naive run) into ml_models.metrics.",
    deps=[
        dg.AssetDep(
            "forecasts",
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        ),
        dg.AssetKey(OHLCV),
    ],
    kinds={"pandas", "postgres"},
)
def forecast_accuracy_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine = warehouse.engine()
    outcomes, row_count, scores_all = [], 0, []
    for day, nxt, key in _days(context):
        with engine.begin() as conn:
            filled = accuracy.fill_actuals(conn, day, nxt, clock.now())
            model_ids = accuracy.runs_with_targets_in(conn, day, nxt)
            scores = accuracy.score_runs(conn, model_ids)
            changed = accuracy.store_scores(conn, scores)
            generated = _generated_days(conn, model_ids)
            upstream = _derived_entries(conn, "forecasts", generated) + _source_entries(
                context, OHLCV, day, nxt
            )
            scored = _scored_rows(conn, day, nxt)
            version = lineage.content_version(scored, scores.drop(columns=["model_id"], errors="ignore"))
            _record(
                conn,
                context,
                "forecast_accuracy",
                key,
                upstream,
                version,
                len(scored),
                len(scored) + len(scores),
                {"actuals_filled": filled, "runs_scored": len(scores), "model_ids": model_ids},
            )
            row_count += len(scored)
        scores_all.append(scores)
        outcomes.append(DayOutcome(key, version, len(scored), len(scored), filled + changed))
    scores = pd.concat(scores_all, ignore_index=True) if scores_all else pd.DataFrame()
    summary = accuracy.summary_by_kind(scores)
    extra = {"actual_rows": row_count}
    if not summary.empty:
        extra["accuracy_by_kind"] = dg.MetadataValue.md(summary.round(4).to_markdown(index=False))
        extra["forecasts_vs_actuals"] = _forecast_plot(engine, scores)
    return _result("forecast_accuracy", outcomes, row_count, extra)


def _generated_days(conn: sa.Connection, model_ids: list[int]) -> list[str]:
    if not model_ids:
        return []
    query = (
        sa.select(sa.func.min(Forecast.generated_at))
        .where(Forecast.model_id.in_(model_ids))
        .group_by(Forecast.model_id)
    )
    # a run generated at D+1 00:00 was trained on day D: it belongs to forecasts' partition D
    return sorted({lineage.partition_of(t - timedelta(microseconds=1)) for t in conn.scalars(query)})


def _scored_rows(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    f = Forecast
    query = (
        sa.select(f.model_id, f.symbol, f.interval, f.generated_at, f.target_time, f.point, f.actual, f.error)
        .where(f.target_time >= start, f.target_time < end, f.actual.is_not(None))
        .order_by(f.model_id, f.target_time)
    )
    return pd.DataFrame(conn.execute(query).mappings().all())


def _forecast_plot(engine: sa.Engine, scores: pd.DataFrame) -> dg.MetadataValue:
    """The forecasts of the last scored run's series and training end, against the actual closes
    (plotted at their close times, as target times are)."""
    f = Forecast
    with engine.connect() as conn:
        run = conn.execute(
            sa.select(f.exchange, f.symbol, f.interval, f.generated_at)
            .where(f.model_id == int(scores.iloc[-1]["model_id"]))
            .limit(1)
        ).one()
        same_run = (f.exchange == run.exchange, f.symbol == run.symbol, f.interval == run.interval)
        query = (
            sa.select(MlModel.kind, f.target_time, f.point, f.lower_95, f.upper_95)
            .join(MlModel, MlModel.id == f.model_id)
            .where(*same_run, f.generated_at == run.generated_at)
            .order_by(f.target_time)
        )
        frame = pd.DataFrame(conn.execute(query).mappings().all())
        step = interval_to_timedelta(run.interval)
        span = frame["target_time"].max() - run.generated_at
        history = pd.DataFrame(
            conn.execute(
                sa.select(Ohlcv.time, Ohlcv.close)
                .where(
                    Ohlcv.exchange == run.exchange, Ohlcv.symbol == run.symbol, Ohlcv.interval == run.interval
                )
                .where(Ohlcv.time >= run.generated_at - span - step, Ohlcv.time < frame["target_time"].max())
                .order_by(Ohlcv.time)
            ).all(),
            columns=["time", "close"],
        )
    fig, ax = _figure()
    ax.plot(history["time"] + step, history["close"], color="black", linewidth=1.2, label="actual close")
    for kind, group in frame.groupby("kind"):
        ax.plot(group["target_time"], group["point"], linewidth=1, label=kind)
        ax.fill_between(group["target_time"], group["lower_95"], group["upper_95"], alpha=0.12)
    ax.axvline(run.generated_at, color="grey", linestyle=":", linewidth=1)
    ax.set_title(
        f"{run.exchange} {run.symbol} {run.interval}: forecasts from {run.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    ax.legend(fontsize=7)
    return _png_markdown(fig, "forecasts vs actuals")


# --- strategy, backtest, equity, risk -----------------------------------------------------------------------


def _strategy_series(conn: sa.Connection, analytics: AnalyticsResource, end: datetime) -> list[Series]:
    """Series the book trades: those of the strategy's intervals with candles since inception."""
    found = features.series_in_window(conn, analytics.inception(), end)
    return [Series(*s) for s in found if s[2] in analytics.strategy_intervals]


def _replays(conn: sa.Connection, analytics: AnalyticsResource, end: datetime) -> dict[Series, tuple]:
    """The strategy replayed from inception to `end` for every series: {series: (candles, simulation)}."""
    p = analytics.strategy_params()
    out = {}
    for s in _strategy_series(conn, analytics, end):
        candles = features.read_candles(conn, (s.exchange, s.symbol, s.interval), analytics.inception(), end)
        sim = strategy.simulate(candles, interval_to_timedelta(s.interval), p, s.book_id(p))
        out[s] = (candles, sim)
    return out


def _portfolios(analytics: AnalyticsResource, series: list[Series]) -> list[risk.Portfolio]:
    """One sleeve per series and the whole book (capital = per-series capital x series)."""
    p = analytics.strategy_params()
    capital = strategy.money(p.initial_capital)
    sleeves = [
        risk.Portfolio(s.book_id(p), p.name, capital, (s,), correlation_prefix=s.book_id(p) + ":")
        for s in series
    ]
    book = [risk.Portfolio(p.name, p.name, capital * len(series), tuple(series))] if series else []
    return book + sleeves


@_asset(
    "trading_signals",
    "Signals of the reference strategy (SMA crossover with stop-loss / take-profit), replayed from the "
    "book's inception; each day writes its own signals.",
    deps=[dg.AssetKey(OHLCV), dg.AssetKey(FILES)],
    kinds={"talib", "pandas", "postgres"},
)
def trading_signals_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, p = warehouse.engine(), analytics.strategy_params()
    outcomes, row_count = [], 0
    for day, nxt, key in _days(context):
        with engine.begin() as conn:
            replays = _replays(conn, analytics, nxt)
            written, rows = 0, []
            for s, (_, sim) in replays.items():
                written += backtest.write_signals(conn, sim, s, p, day, nxt).written
                rows += backtest.signal_rows(sim, s, p, day, nxt)
            rows_in = sum(len(c) for c, _ in replays.values())
            version = lineage.content_version(rows)
            upstream = _source_entries(context, OHLCV, analytics.inception(), nxt) + _files_entry(context)
            _record(
                conn,
                context,
                "trading_signals",
                key,
                upstream,
                version,
                rows_in,
                len(rows),
                {"strategy": p.describe(), "series": [s.book_id(p) for s in replays]},
            )
            row_count += _count(
                conn,
                "trading_signals",
                "time",
                day,
                nxt,
                Base.metadata.tables["trading_signals"].c.strategy == p.name,
            )
        outcomes.append(DayOutcome(key, version, rows_in, len(rows), written))
    return _result("trading_signals", outcomes, row_count, {"strategy": dg.MetadataValue.json(p.describe())})


@_asset(
    "backtest",
    "Simulated fills with fees into trade_history, closed round trips into bot_trades, and a "
    "backtest_results row per series from inception to the end of the day.",
    deps=[dg.AssetKey("trading_signals"), dg.AssetKey(OHLCV)],
    kinds={"pandas", "postgres"},
)
def backtest_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, p = warehouse.engine(), analytics.strategy_params()
    outcomes, row_count, table = [], 0, []
    for day, nxt, key in _days(context):
        with engine.begin() as conn:
            replays = _replays(conn, analytics, nxt)
            written, owned = 0, []
            for s, (candles, sim) in replays.items():
                results = backtest.write_executions(conn, sim, s, p, day, nxt)
                written += sum(r.written for r in results.values())
                perf = backtest.performance(sim, p, interval_to_timedelta(s.interval))
                start_time = candles["time"].iloc[0].to_pydatetime()
                result, backtest_id = backtest.write_result(
                    conn, perf, s, p, start_time, nxt, context.run.run_id
                )
                written += result.written
                owned += backtest.fill_rows(sim, s, p, day, nxt, {}) + backtest.round_trip_rows(
                    sim, s, p, day, nxt
                )
                owned.append({"series": s.book_id(p), **perf.__dict__})
                table.append({"day": key, "series": s.book_id(p), "id": backtest_id, **_perf_row(perf)})
            rows_in = sum(len(c) for c, _ in replays.values()) + sum(
                len(sim.signals) for _, sim in replays.values()
            )
            version = lineage.content_version(owned)
            upstream = _derived_entries(conn, "trading_signals", [key]) + _source_entries(
                context, OHLCV, analytics.inception(), nxt
            )
            _record(
                conn,
                context,
                "backtest",
                key,
                upstream,
                version,
                rows_in,
                len(owned),
                {"strategy": p.describe()},
            )
            row_count += len(replays)
        outcomes.append(DayOutcome(key, version, rows_in, len(owned), written))
    extra = {}
    if table:
        extra["backtest_results"] = dg.MetadataValue.md(pd.DataFrame(table).to_markdown(index=False))
    return _result("backtest", outcomes, row_count, extra)


def _perf_row(perf: backtest.Performance) -> dict:
    return {
        "final_equity": float(perf.final_equity),
        "total_return": round(perf.total_return, 6),
        "sharpe": None if perf.sharpe_ratio is None else round(perf.sharpe_ratio, 3),
        "max_drawdown": round(perf.max_drawdown, 4),
        "trades": perf.trades,
        "win_rate": perf.win_rate,
        "fees": float(perf.fees_paid),
    }


@_asset(
    "equity_curve",
    "Equity, cash, buying power and returns of the book and of each series' sleeve at every bar close, "
    "rebuilt from the stored fills and the latest candle closes.",
    deps=[dg.AssetKey("backtest"), dg.AssetKey(OHLCV)],
    kinds={"pandas", "postgres"},
)
def equity_curve_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine = warehouse.engine()
    outcomes, row_count, book = [], 0, None
    for day, nxt, key in _days(context):
        with engine.begin() as conn:
            portfolios = _portfolios(analytics, _strategy_series(conn, analytics, nxt))
            frames, rows_in, written = [], 0, 0
            for pf in portfolios:
                frame, _, n_in = risk.equity_for_window(conn, pf, day, nxt)
                written += risk.write_equity(conn, pf, frame, day, nxt, context.run.run_id).written
                frames.append(frame)
                rows_in += n_in
            frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            version = lineage.content_version(frame)
            upstream = _derived_entries(conn, "backtest", [key]) + _source_entries(
                context, OHLCV, day - timedelta(days=1), nxt
            )
            _record(
                conn,
                context,
                "equity_curve",
                key,
                upstream,
                version,
                rows_in,
                len(frame),
                {"portfolios": [pf.name for pf in portfolios]},
            )
            row_count += len(frame)
            book = portfolios[0] if portfolios else book
        outcomes.append(DayOutcome(key, version, rows_in, len(frame), written))
    extra = {}
    if book is not None:
        with engine.connect() as conn:
            equity = risk.read_equity(conn, book.name, nxt)
        if len(equity):
            extra["equity_curve_plot"] = _equity_plot(book.name, equity)
            extra["final_equity"] = float(equity.iloc[-1])
    return _result("equity_curve", outcomes, row_count, extra)


def _equity_plot(name: str, equity: pd.Series) -> dg.MetadataValue:
    fig, ax = _figure()
    values = equity.astype(float)
    ax.plot(values.index, values.to_numpy(), color="tab:blue", linewidth=1.2)
    ax.fill_between(
        values.index,
        values.cummax().to_numpy(),
        values.to_numpy(),
        color="tab:red",
        alpha=0.2,
        label="drawdown",
    )
    ax.set_title(f"equity of {name}")
    ax.legend(fontsize=7)
    return _png_markdown(fig, f"equity curve of {name}")


@_asset(
    "risk_metrics",
    "Risk snapshots of the book and each sleeve at every bar close: positions, exposure, largest position, "
    "PnL, drawdown, Sharpe, historical VaR / CVaR 95 % and 99 %, daily loss vs limit.",
    deps=[dg.AssetKey("equity_curve"), dg.AssetKey("backtest"), dg.AssetKey(OHLCV)],
    kinds={"pandas", "postgres"},
)
def risk_metrics_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, params = warehouse.engine(), analytics.risk_params()
    outcomes, row_count, last = [], 0, None
    for day, nxt, key in _days(context):
        with engine.begin() as conn:
            portfolios = _portfolios(analytics, _strategy_series(conn, analytics, nxt))
            frames, rows_in, written = [], 0, 0
            for pf in portfolios:
                frame, n_in = risk.risk_for_window(conn, pf, day, nxt, params)
                written += risk.write_risk(conn, pf, frame, day, nxt, context.run.run_id).written
                frames.append(frame)
                rows_in += n_in
            frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            version = lineage.content_version(frame)
            history = lineage.days_between(
                max(analytics.inception(), day - timedelta(days=params.lookback_days)), nxt
            )
            upstream = (
                _derived_entries(conn, "equity_curve", history)
                + _derived_entries(conn, "backtest", [key])
                + _source_entries(context, OHLCV, day - timedelta(days=1), nxt)
            )
            _record(
                conn,
                context,
                "risk_metrics",
                key,
                upstream,
                version,
                rows_in,
                len(frame),
                {"params": params.__dict__},
            )
            row_count += len(frame)
            if len(frame):
                last = frame[frame["portfolio"] == portfolios[0].name].tail(1)
        outcomes.append(DayOutcome(key, version, rows_in, len(frame), written))
    extra = {}
    if last is not None and len(last):
        snap = last.iloc[0]
        extra["latest_book_snapshot"] = dg.MetadataValue.json(
            {
                k: (str(v) if not isinstance(v, (int, float, bool, type(None))) else v)
                for k, v in snap.to_dict().items()
            }
        )
    return _result("risk_metrics", outcomes, row_count, extra)


DERIVED_ASSETS = [
    features_asset,
    forecasts_asset,
    forecast_accuracy_asset,
    trading_signals_asset,
    backtest_asset,
    equity_curve_asset,
    risk_metrics_asset,
]
derived_job = dg.define_asset_job("derived_job", selection=dg.AssetSelection.groups(GROUP))


@dg.schedule(name="daily_derived", cron_schedule="45 0 * * *", job=derived_job, execution_timezone="UTC")
def daily_derived(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's derived partition at 00:45 UTC, after the daily market-data load (00:15) has stored the
    day's last candles: features, forecasts, yesterday's forecast accuracy, signals to risk."""
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"derived-{yesterday}", partition_key=yesterday)


defs = dg.Definitions(
    assets=DERIVED_ASSETS,
    jobs=[derived_job],
    schedules=[daily_derived],
    resources={"analytics": AnalyticsResource()},
)
