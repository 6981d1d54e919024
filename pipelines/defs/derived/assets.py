"""Derived assets: features, forecasts and their accuracy, the reference strategy's signals and backtest,
equity curve and risk snapshots — each with its lineage row.

Every asset is partitioned by UTC day like the market data and backfilled in a single run; the loop over
the days and the lineage row of each day are `driver.materialize_days`. What is here is each asset's step
for one day: read, compute (`resources/analytics/`), write through the loaders, and say what it read and
owns (`DayOutput`). Names, tables, descriptions and kinds come from `pipelines/datasets.py`; column lineage
and the upstream entries from `lineage.py`; plots from `plots.py`; the few SQL reads from `queries.py`.
"""

# No `from __future__ import annotations`: Dagster reads resource types from the signatures.
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import pandas as pd

from pipelines.datasets import dataset
from pipelines.defs.derived import book, queries
from pipelines.defs.derived.driver import Day, DayOutput, frames_concat, materialize_days
from pipelines.defs.derived.lineage import FILES, OHLCV, candle_entries, derived_entries, source_entries
from pipelines.defs.derived.plots import equity_plot, forecast_plot
from pipelines.defs.derived.resources import AnalyticsResource
from pipelines.partitions import daily_dataset_asset
from resources import clock
from resources.analytics import accuracy, backtest, features, forecasting, lineage, risk
from resources.dagster_resources import WarehouseResource
from resources.intervals import interval_to_timedelta
from resources.warehouse.load import load_frame

CODE_VERSIONS = {
    "features": "1",
    "forecasts": f"1-{forecasting.CODE_VERSION}",
    "forecast_accuracy": "1",
    "trading_signals": "1",
    "backtest": "1",
    "equity_curve": "1",
    "risk_metrics": "1",
}
SOURCES = [dg.AssetKey(OHLCV), dg.AssetKey(FILES)]


def derived_asset(name: str, deps: list):
    """The derived asset decorator: its dataset's table, description and kinds, daily partitions."""
    return daily_dataset_asset(dataset(name), CODE_VERSIONS[name], deps=deps)


# --- features ----------------------------------------------------------------------------------------------


@derived_asset("features", deps=SOURCES)
def features_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, fs = warehouse.engine(), analytics.feature_set_def()

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.connect() as conn:
            computed = [
                features.features_for_window(conn, series, day.start, day.end, fs)
                for series in features.series_in_window(conn, day.start, day.end)
            ]
        frame = frames_concat([f for f, _ in computed])
        read = [c for _, c in computed]
        loaded = load_frame(
            engine,
            "features",
            frame,
            run_id=context.run.run_id,
            partition_key=day.key,
            source=f"derived:{fs.name}",
        )
        first = min((c["time"].iloc[0] for c in read if len(c)), default=day.start)
        with engine.begin() as conn:
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(frame),
                    rows_in=sum(len(c) for c in read),
                    rows_out=len(frame),
                    written=loaded.inserted + loaded.updated,
                    upstream=candle_entries(context, first, day.end),
                    row_count=queries.count_features(conn, day.start, day.end, fs.name),
                    metadata={
                        "feature_set": fs.describe(),
                        "series": len(computed),
                        "quarantined": loaded.quarantined,
                    },
                ),
            )

    run = materialize_days(context, "features", CODE_VERSIONS["features"], step)
    return run.result(
        {"feature_set": dg.MetadataValue.json(fs.describe()), "warmup_bars": features.warmup_bars(fs.params)}
    )


# --- forecasts and accuracy ---------------------------------------------------------------------------------


@derived_asset("forecasts", deps=SOURCES)
def forecasts_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, params = warehouse.engine(), analytics.forecast_params()
    kinds = tuple(analytics.forecast_models)
    model_ids: list[int] = []

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.connect() as conn:
            chosen = [
                s
                for s in features.series_in_window(conn, day.start, day.end)
                if s[2] in analytics.forecast_intervals
            ]
            inputs = {
                s: features.read_candles(conn, s, day.start, day.end, warmup=params.training_bars)
                for s in chosen
            }
        runs = [
            run
            for s, candles in inputs.items()
            for run in forecasting.forecast_series(candles, s, params, kinds)
        ]
        with engine.begin() as conn:
            ids = [forecasting.register_run(conn, run) for run in runs]
        model_ids.extend(ids)
        frame = frames_concat([forecasting.forecast_rows(r, i) for r, i in zip(runs, ids, strict=True)])
        loaded = load_frame(
            engine,
            "forecasts",
            frame,
            run_id=context.run.run_id,
            partition_key=day.key,
            source="derived:forecasts",
        )
        registry = [{"name": r.name, "version": r.version, "params": r.params} for r in runs]
        used = [c.tail(params.training_bars) for c in inputs.values() if len(c)]
        first = min((c["time"].iloc[0] for c in used), default=day.start)
        with engine.begin() as conn:
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(
                        frame.drop(columns=["model_id"], errors="ignore"), registry
                    ),
                    rows_in=sum(len(c) for c in used),
                    rows_out=len(frame),
                    written=loaded.inserted + loaded.updated,
                    upstream=candle_entries(context, first, day.end),
                    row_count=queries.count_forecasts(conn, day.start, day.end),
                    metadata={
                        "model_ids": ids,
                        "models": [r.name for r in runs],
                        "params": params.__dict__ | {"kinds": kinds},
                    },
                ),
            )

    run = materialize_days(context, "forecasts", CODE_VERSIONS["forecasts"], step)
    return run.result({"model_runs": len(model_ids)})


# The accuracy of day D's forecasts is known once the candles of D+1 are: it reads forecasts' partition D-1.
_PREVIOUS_DAY = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)


@derived_asset(
    "forecast_accuracy", deps=[dg.AssetDep("forecasts", partition_mapping=_PREVIOUS_DAY), dg.AssetKey(OHLCV)]
)
def forecast_accuracy_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine = warehouse.engine()
    all_scores: list[pd.DataFrame] = []

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.begin() as conn:
            filled = accuracy.fill_actuals(conn, day.start, day.end, clock.now())
            model_ids = accuracy.runs_with_targets_in(conn, day.start, day.end)
            scores = accuracy.score_runs(conn, model_ids)
            changed = accuracy.store_scores(conn, scores)
            upstream = derived_entries(conn, "forecasts", queries.generated_days(conn, model_ids))
            upstream += source_entries(context, OHLCV, day.start, day.end)
            scored = queries.scored_rows(conn, day.start, day.end)
            all_scores.append(scores)
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(
                        scored, scores.drop(columns=["model_id"], errors="ignore")
                    ),
                    rows_in=len(scored),
                    rows_out=len(scored),
                    written=filled + changed,
                    upstream=upstream,
                    row_count=len(scored),
                    metadata={"actuals_filled": filled, "runs_scored": len(scores), "model_ids": model_ids},
                    recorded_rows_out=len(scored) + len(scores),
                ),
            )

    run = materialize_days(context, "forecast_accuracy", CODE_VERSIONS["forecast_accuracy"], step)
    scores = frames_concat(all_scores)
    summary = accuracy.summary_by_kind(scores)
    extra = {"actual_rows": run.row_count}
    if not summary.empty:
        extra["accuracy_by_kind"] = dg.MetadataValue.md(summary.round(4).to_markdown(index=False))
        extra["forecasts_vs_actuals"] = forecast_plot(engine, scores)
    return run.result(extra)


# --- strategy, backtest, equity, risk -----------------------------------------------------------------------


@derived_asset("trading_signals", deps=SOURCES)
def trading_signals_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, p = warehouse.engine(), analytics.strategy_params()

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.begin() as conn:
            replays = book.replays(conn, analytics, day.end)
            written, rows = 0, []
            for s, (_, sim) in replays.items():
                written += backtest.write_signals(conn, sim, s, p, day.start, day.end).written
                rows += backtest.signal_rows(sim, s, p, day.start, day.end)
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(rows),
                    rows_in=sum(len(c) for c, _ in replays.values()),
                    rows_out=len(rows),
                    written=written,
                    upstream=candle_entries(context, analytics.inception(), day.end),
                    row_count=queries.count_signals(conn, day.start, day.end, p.name),
                    metadata={"strategy": p.describe(), "series": [s.book_id(p) for s in replays]},
                ),
            )

    run = materialize_days(context, "trading_signals", CODE_VERSIONS["trading_signals"], step)
    return run.result({"strategy": dg.MetadataValue.json(p.describe())})


@derived_asset("backtest", deps=[dg.AssetKey("trading_signals"), dg.AssetKey(OHLCV)])
def backtest_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, p = warehouse.engine(), analytics.strategy_params()
    table: list[dict] = []

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.begin() as conn:
            replays = book.replays(conn, analytics, day.end)
            written, owned = 0, []
            for s, (candles, sim) in replays.items():
                results = backtest.write_executions(conn, sim, s, p, day.start, day.end)
                written += sum(r.written for r in results.values())
                perf = backtest.performance(sim, p, interval_to_timedelta(s.interval))
                start_time = candles["time"].iloc[0].to_pydatetime()
                result, backtest_id = backtest.write_result(
                    conn, perf, s, p, start_time, day.end, context.run.run_id
                )
                written += result.written
                owned += backtest.fill_rows(sim, s, p, day.start, day.end, {})
                owned += backtest.round_trip_rows(sim, s, p, day.start, day.end)
                owned.append({"series": s.book_id(p), **perf.__dict__})
                table.append(
                    {"day": day.key, "series": s.book_id(p), "id": backtest_id, **book.perf_row(perf)}
                )
            upstream = derived_entries(conn, "trading_signals", [day.key])
            upstream += source_entries(context, OHLCV, analytics.inception(), day.end)
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(owned),
                    rows_in=sum(len(c) + len(sim.signals) for c, sim in replays.values()),
                    rows_out=len(owned),
                    written=written,
                    upstream=upstream,
                    row_count=len(replays),
                    metadata={"strategy": p.describe()},
                ),
            )

    run = materialize_days(context, "backtest", CODE_VERSIONS["backtest"], step)
    extra = (
        {"backtest_results": dg.MetadataValue.md(pd.DataFrame(table).to_markdown(index=False))}
        if table
        else {}
    )
    return run.result(extra)


@derived_asset("equity_curve", deps=[dg.AssetKey("backtest"), dg.AssetKey(OHLCV)])
def equity_curve_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine = warehouse.engine()
    books: list[risk.Portfolio] = []  # the whole book of each day that had one

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.begin() as conn:
            portfolios = book.portfolios(conn, analytics, day.end)
            frames, rows_in, written = [], 0, 0
            for pf in portfolios:
                frame, _, n_in = risk.equity_for_window(conn, pf, day.start, day.end)
                written += risk.write_equity(conn, pf, frame, day.start, day.end, context.run.run_id).written
                frames.append(frame)
                rows_in += n_in
            frame = frames_concat(frames)
            upstream = derived_entries(conn, "backtest", [day.key])
            upstream += source_entries(context, OHLCV, day.start - timedelta(days=1), day.end)
            books.extend(portfolios[:1])
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(frame),
                    rows_in=rows_in,
                    rows_out=len(frame),
                    written=written,
                    upstream=upstream,
                    row_count=len(frame),
                    metadata={"portfolios": [pf.name for pf in portfolios]},
                ),
            )

    run = materialize_days(context, "equity_curve", CODE_VERSIONS["equity_curve"], step)
    extra = {}
    if books:
        with engine.connect() as conn:
            equity = risk.read_equity(conn, books[-1].name, run.last.end)
        if len(equity):
            extra["equity_curve_plot"] = equity_plot(books[-1].name, equity)
            extra["final_equity"] = float(equity.iloc[-1])
    return run.result(extra)


@derived_asset(
    "risk_metrics", deps=[dg.AssetKey("equity_curve"), dg.AssetKey("backtest"), dg.AssetKey(OHLCV)]
)
def risk_metrics_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
) -> dg.MaterializeResult:
    engine, params = warehouse.engine(), analytics.risk_params()
    snapshots: list[pd.DataFrame] = []  # the book's last snapshot of each day that had one

    @contextmanager
    def step(day: Day) -> Iterator:
        with engine.begin() as conn:
            portfolios = book.portfolios(conn, analytics, day.end)
            frames, rows_in, written = [], 0, 0
            for pf in portfolios:
                frame, n_in = risk.risk_for_window(conn, pf, day.start, day.end, params)
                written += risk.write_risk(conn, pf, frame, day.start, day.end, context.run.run_id).written
                frames.append(frame)
                rows_in += n_in
            frame = frames_concat(frames)
            history = lineage.days_between(
                max(analytics.inception(), day.start - timedelta(days=params.lookback_days)), day.end
            )
            upstream = derived_entries(conn, "equity_curve", history) + derived_entries(
                conn, "backtest", [day.key]
            )
            upstream += source_entries(context, OHLCV, day.start - timedelta(days=1), day.end)
            if len(frame):
                snapshots.append(frame[frame["portfolio"] == portfolios[0].name].tail(1))
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(frame),
                    rows_in=rows_in,
                    rows_out=len(frame),
                    written=written,
                    upstream=upstream,
                    row_count=len(frame),
                    metadata={"params": params.__dict__},
                ),
            )

    run = materialize_days(context, "risk_metrics", CODE_VERSIONS["risk_metrics"], step)
    extra = {}
    if snapshots and len(snapshots[-1]):
        snap = snapshots[-1].iloc[0]
        extra["latest_book_snapshot"] = dg.MetadataValue.json(
            {
                k: (str(v) if not isinstance(v, (int, float, bool, type(None))) else v)
                for k, v in snap.to_dict().items()
            }
        )
    return run.result(extra)


DERIVED_ASSETS = [
    features_asset,
    forecasts_asset,
    forecast_accuracy_asset,
    trading_signals_asset,
    backtest_asset,
    equity_curve_asset,
    risk_metrics_asset,
]
