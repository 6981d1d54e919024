"""Derived assets: features, forecasts and their accuracy, the reference strategy's signals and backtest,
equity curve and risk snapshots — each with its lineage row.

Every asset is partitioned by UTC day like the market data and backfilled in a single run; the loop over
the days, the lineage row of each day and the Dagster asset itself are `driver.py`. What is here is each
asset's `DerivedSteps`: its step for one day (read, compute with `resources/analytics/`, write through the
loaders, and say what it read and owns: `DayOutput`) and the run's extra metadata. Names, tables, descriptions and kinds come from `pipelines/datasets.py`; column lineage
and the upstream entries from `lineage.py`; plots from `plots.py`; the few SQL reads from `queries.py`.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd

from market_warehouse.pipelines.defs.derived import book, queries
from market_warehouse.pipelines.defs.derived.driver import (
    Day,
    DayOutput,
    DayRun,
    DerivedSteps,
    derived_asset,
    frames_concat,
)
from market_warehouse.pipelines.defs.derived.lineage import (
    FILES,
    OHLCV,
    candle_entries,
    derived_entries,
    source_entries,
)
from market_warehouse.pipelines.defs.derived.plots import (
    equity_plot,
    equity_sparkline,
    forecast_plot,
    forecast_sparkline,
)
from market_warehouse.resources import clock
from market_warehouse.resources.analytics import accuracy, backtest, features, forecasting, lineage, risk
from market_warehouse.resources.intervals import interval_to_timedelta

SOURCES = [dg.AssetKey(OHLCV), dg.AssetKey(FILES)]


# --- features ----------------------------------------------------------------------------------------------


class Features(DerivedSteps):
    name, deps, code_version = "features", SOURCES, "1"

    @contextmanager
    def day(self, day: Day) -> Iterator:
        fs = self.analytics.feature_set_def()
        with self.engine.connect() as conn:
            computed = [
                features.features_for_window(conn, series, day.start, day.end, fs)
                for series in features.series_in_window(conn, day.start, day.end)
            ]
        frame = frames_concat([f for f, _ in computed])
        read = [c for _, c in computed]
        loaded = self.load_day(frame, day, f"derived:{fs.name}")
        first = min((c["time"].iloc[0] for c in read if len(c)), default=day.start)
        with self.engine.begin() as conn:
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(frame),
                    rows_in=sum(len(c) for c in read),
                    rows_out=len(frame),
                    written=loaded.inserted + loaded.updated,
                    upstream=candle_entries(self.context, first, day.end),
                    row_count=queries.count_features(conn, day.start, day.end, fs.name),
                    metadata={
                        "feature_set": fs.describe(),
                        "series": len(computed),
                        "quarantined": loaded.quarantined,
                    },
                ),
            )

    def extra(self, run: DayRun) -> dict:
        fs = self.analytics.feature_set_def()
        return {
            "feature_set": dg.MetadataValue.json(fs.describe()),
            "warmup_bars": features.warmup_bars(fs.params),
        }


# --- forecasts and accuracy ---------------------------------------------------------------------------------


class Forecasts(DerivedSteps):
    name, deps, code_version = "forecasts", SOURCES, f"1-{forecasting.CODE_VERSION}"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.model_ids: list[int] = []

    @contextmanager
    def day(self, day: Day) -> Iterator:
        params, kinds = self.analytics.forecast_params(), tuple(self.analytics.forecast_models)
        inputs = self._inputs(day)
        runs = [
            run
            for s, candles in inputs.items()
            for run in forecasting.forecast_series(candles, s, params, kinds)
        ]
        with self.engine.begin() as conn:
            ids = [forecasting.register_run(conn, run) for run in runs]
        self.model_ids.extend(ids)
        frame = frames_concat([forecasting.forecast_rows(r, i) for r, i in zip(runs, ids, strict=True)])
        loaded = self.load_day(frame, day, "derived:forecasts")
        registry = [{"name": r.name, "version": r.version, "params": r.params} for r in runs]
        used = [c.tail(params.training_bars) for c in inputs.values() if len(c)]
        first = min((c["time"].iloc[0] for c in used), default=day.start)
        with self.engine.begin() as conn:
            yield (
                conn,
                DayOutput(
                    version=lineage.content_version(
                        frame.drop(columns=["model_id"], errors="ignore"), registry
                    ),
                    rows_in=sum(len(c) for c in used),
                    rows_out=len(frame),
                    written=loaded.inserted + loaded.updated,
                    upstream=candle_entries(self.context, first, day.end),
                    row_count=queries.count_forecasts(conn, day.start, day.end),
                    metadata={
                        "model_ids": ids,
                        "models": [r.name for r in runs],
                        "params": params.__dict__ | {"kinds": kinds},
                    },
                ),
            )

    def _inputs(self, day: Day) -> dict[tuple[str, str, str], pd.DataFrame]:
        """Candles (with the training warm-up) of the series of the forecast intervals that traded that day."""
        training_bars = self.analytics.forecast_params().training_bars
        with self.engine.connect() as conn:
            chosen = [
                s
                for s in features.series_in_window(conn, day.start, day.end)
                if s[2] in self.analytics.forecast_intervals
            ]
            return {
                s: features.read_candles(conn, s, day.start, day.end, warmup=training_bars) for s in chosen
            }

    def extra(self, run: DayRun) -> dict:
        return {"model_runs": len(self.model_ids)}


class ForecastAccuracy(DerivedSteps):
    # The accuracy of day D's forecasts is known once the candles of D+1 are: it reads forecasts' D-1.
    with warnings.catch_warnings():  # the parameter is "beta" in Dagster 1.13: known and chosen
        warnings.simplefilter("ignore", dg.BetaWarning)
        previous_day = dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
        )
    name, code_version = "forecast_accuracy", "1"
    deps = [dg.AssetDep("forecasts", partition_mapping=previous_day), dg.AssetKey(OHLCV)]

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.scores: list[pd.DataFrame] = []

    @contextmanager
    def day(self, day: Day) -> Iterator:
        now = clock.now()
        if day.end > now:
            # An asset backfill maps forecasts' D-1 to this D, so forecasts up to yesterday bring today in:
            # scoring a day whose candles are still coming would store partial metrics. Not scored, said so.
            with self.engine.begin() as conn:
                yield conn, self._not_scored(day, now)
            return
        with self.engine.begin() as conn:
            filled = accuracy.fill_actuals(conn, day.start, day.end, now)
            model_ids = accuracy.runs_with_targets_in(conn, day.start, day.end)
            scores = accuracy.score_runs(conn, model_ids)
            changed = accuracy.store_scores(conn, scores)
            upstream = derived_entries(conn, "forecasts", queries.generated_days(conn, model_ids))
            upstream += source_entries(self.context, OHLCV, day.start, day.end)
            scored = queries.scored_rows(conn, day.start, day.end)
            self.scores.append(scores)
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

    @staticmethod
    def _not_scored(day: Day, now: datetime) -> DayOutput:
        """The output of a day not complete yet: nothing filled or scored, the reason in its metadata."""
        note = (
            f"not scored: the day ends {day.end.isoformat()}, after now ({now.isoformat()}); its accuracy is "
            "scored by the run of a complete day"
        )
        return DayOutput(
            version=lineage.content_version([{"day": day.key, "scored": False}]),
            rows_in=0,
            rows_out=0,
            written=0,
            upstream=[],
            row_count=0,
            metadata={"not_scored": note},
            note=note,
        )

    def extra(self, run: DayRun) -> dict:
        scores = frames_concat(self.scores)
        summary = accuracy.summary_by_kind(scores)
        extra = {"actual_rows": run.row_count}
        if not summary.empty:
            extra["accuracy_by_kind"] = dg.MetadataValue.md(summary.round(4).to_markdown(index=False))
            inline = forecast_sparkline(self.engine, scores)
            if inline is not None:
                extra["forecasts"] = inline
            extra["forecasts_vs_actuals"] = forecast_plot(self.engine, scores)
        return extra


# --- strategy, backtest, equity, risk -----------------------------------------------------------------------


class TradingSignals(DerivedSteps):
    name, deps, code_version = "trading_signals", SOURCES, "1"

    @contextmanager
    def day(self, day: Day) -> Iterator:
        p = self.analytics.strategy_params()
        with self.engine.begin() as conn:
            replays = book.replays(conn, self.analytics, day.end)
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
                    upstream=candle_entries(self.context, self.analytics.inception(), day.end),
                    row_count=queries.count_signals(conn, day.start, day.end, p.name),
                    metadata={"strategy": p.describe(), "series": [s.book_id(p) for s in replays]},
                ),
            )

    def extra(self, run: DayRun) -> dict:
        return {"strategy": dg.MetadataValue.json(self.analytics.strategy_params().describe())}


class Backtest(DerivedSteps):
    name, deps, code_version = "backtest", [dg.AssetKey("trading_signals"), dg.AssetKey(OHLCV)], "1"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.table: list[dict] = []  # one row per (day, series): the backtest_results shown in the UI

    @contextmanager
    def day(self, day: Day) -> Iterator:
        p = self.analytics.strategy_params()
        with self.engine.begin() as conn:
            replays = book.replays(conn, self.analytics, day.end)
            written, owned = 0, []
            for s, (candles, sim) in replays.items():
                results = backtest.write_executions(conn, sim, s, p, day.start, day.end)
                written += sum(r.written for r in results.values())
                perf = backtest.performance(sim, p, interval_to_timedelta(s.interval))
                start_time = candles["time"].iloc[0].to_pydatetime()
                result, backtest_id = backtest.write_result(
                    conn, perf, s, p, start_time, day.end, self.context.run.run_id
                )
                written += result.written
                owned += backtest.fill_rows(sim, s, p, day.start, day.end, {})
                owned += backtest.round_trip_rows(sim, s, p, day.start, day.end)
                owned.append({"series": s.book_id(p), **perf.__dict__})
                self.table.append(
                    {"day": day.key, "series": s.book_id(p), "id": backtest_id, **book.perf_row(perf)}
                )
            upstream = derived_entries(conn, "trading_signals", [day.key])
            upstream += source_entries(self.context, OHLCV, self.analytics.inception(), day.end)
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

    def extra(self, run: DayRun) -> dict:
        if not self.table:
            return {}
        return {"backtest_results": dg.MetadataValue.md(pd.DataFrame(self.table).to_markdown(index=False))}


class _PortfolioSteps(DerivedSteps):
    """Equity and risk: per day, one frame per portfolio (the book, then each sleeve), written and joined."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.portfolios: list[risk.Portfolio] = []  # of the last day computed

    def _per_portfolio(self, conn, day: Day, compute) -> tuple[pd.DataFrame, int, int]:
        """(frames joined, rows read, rows written) of `compute(conn, portfolio, day) -> (frame, in, written)`."""
        self.portfolios = book.portfolios(conn, self.analytics, day.end)
        frames, rows_in, written = [], 0, 0
        for pf in self.portfolios:
            frame, n_in, n_written = compute(conn, pf, day)
            frames.append(frame)
            rows_in += n_in
            written += n_written
        return frames_concat(frames), rows_in, written

    def _output(
        self, frame: pd.DataFrame, rows_in: int, written: int, upstream: list, metadata: dict
    ) -> DayOutput:
        return DayOutput(
            version=lineage.content_version(frame),
            rows_in=rows_in,
            rows_out=len(frame),
            written=written,
            upstream=upstream,
            row_count=len(frame),
            metadata=metadata,
        )


class EquityCurve(_PortfolioSteps):
    name, deps, code_version = "equity_curve", [dg.AssetKey("backtest"), dg.AssetKey(OHLCV)], "1"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.book: risk.Portfolio | None = None  # the whole book of the last day that had one

    def _equity(self, conn, pf: risk.Portfolio, day: Day) -> tuple[pd.DataFrame, int, int]:
        frame, _, n_in = risk.equity_for_window(conn, pf, day.start, day.end)
        return (
            frame,
            n_in,
            risk.write_equity(conn, pf, frame, day.start, day.end, self.context.run.run_id).written,
        )

    @contextmanager
    def day(self, day: Day) -> Iterator:
        with self.engine.begin() as conn:
            frame, rows_in, written = self._per_portfolio(conn, day, self._equity)
            upstream = derived_entries(conn, "backtest", [day.key])
            upstream += source_entries(self.context, OHLCV, day.start - timedelta(days=1), day.end)
            self.book = self.portfolios[0] if self.portfolios else self.book
            metadata = {"portfolios": [pf.name for pf in self.portfolios]}
            yield conn, self._output(frame, rows_in, written, upstream, metadata)

    def extra(self, run: DayRun) -> dict:
        if self.book is None:
            return {}
        with self.engine.connect() as conn:
            equity = risk.read_equity(conn, self.book.name, run.last.end)
        if not len(equity):
            return {}
        returns = risk.cumulative_returns(equity, self.book.initial_capital)
        growth = np.concatenate([[1.0], 1 + returns.to_numpy()])  # from the start, as risk measures it
        inline = equity_sparkline(returns)
        drawdown = backtest.max_drawdown(growth)  # a positive fraction; shown as a fall below
        return {
            **({"equity_curve": inline} if inline is not None else {}),
            "equity_curve_plot": equity_plot(self.book.name, returns),
            "final_equity": float(equity["equity"].iloc[-1]),
            # Numbers beside the picture: the metadata's "Plots" view draws them across materializations.
            "time_weighted_return": float(returns.iloc[-1]),
            "max_drawdown": 0.0 - drawdown,  # 0.0 - x: no "-0.0" without a drawdown
        }


class RiskMetrics(_PortfolioSteps):
    name, code_version = "risk_metrics", "2"  # 2: time-weighted returns (a joining series is no gain)
    deps = [dg.AssetKey("equity_curve"), dg.AssetKey("backtest"), dg.AssetKey(OHLCV)]

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.snapshot: pd.DataFrame | None = None  # the book's last snapshot of the last day that had one

    def _risk(self, conn, pf: risk.Portfolio, day: Day) -> tuple[pd.DataFrame, int, int]:
        frame, n_in = risk.risk_for_window(conn, pf, day.start, day.end, self.analytics.risk_params())
        return (
            frame,
            n_in,
            risk.write_risk(conn, pf, frame, day.start, day.end, self.context.run.run_id).written,
        )

    @contextmanager
    def day(self, day: Day) -> Iterator:
        params = self.analytics.risk_params()
        with self.engine.begin() as conn:
            frame, rows_in, written = self._per_portfolio(conn, day, self._risk)
            history = lineage.days_between(
                max(self.analytics.inception(), day.start - timedelta(days=params.lookback_days)), day.end
            )
            upstream = derived_entries(conn, "equity_curve", history) + derived_entries(
                conn, "backtest", [day.key]
            )
            upstream += source_entries(self.context, OHLCV, day.start - timedelta(days=1), day.end)
            if len(frame):
                self.snapshot = frame[frame["portfolio"] == self.portfolios[0].name].tail(1)
            yield conn, self._output(frame, rows_in, written, upstream, {"params": params.__dict__})

    def extra(self, run: DayRun) -> dict:
        if self.snapshot is None or not len(self.snapshot):
            return {}
        snap = self.snapshot.iloc[0].to_dict()
        return {
            "latest_book_snapshot": dg.MetadataValue.json(
                {
                    k: (str(v) if not isinstance(v, (int, float, bool, type(None))) else v)
                    for k, v in snap.items()
                }
            )
        }


STEPS: list[type[DerivedSteps]] = [
    Features,
    Forecasts,
    ForecastAccuracy,
    TradingSignals,
    Backtest,
    EquityCurve,
    RiskMetrics,
]
CODE_VERSIONS = {steps.name: steps.code_version for steps in STEPS}

features_asset = derived_asset(Features)
forecasts_asset = derived_asset(Forecasts)
forecast_accuracy_asset = derived_asset(ForecastAccuracy)
trading_signals_asset = derived_asset(TradingSignals)
backtest_asset = derived_asset(Backtest)
equity_curve_asset = derived_asset(EquityCurve)
risk_metrics_asset = derived_asset(RiskMetrics)
DERIVED_ASSETS = [
    features_asset,
    forecasts_asset,
    forecast_accuracy_asset,
    trading_signals_asset,
    backtest_asset,
    equity_curve_asset,
    risk_metrics_asset,
]
