"""Market data from the exchanges of the universe: candles, trades, order books, ticker metrics, metric series.

Every asset is partitioned by UTC day and backfilled in a single run (`BackfillPolicy.single_run()`): a run
over a partition range walks its time window day by day, and each day is fetched and loaded in bounded
batches, so a 90-day backfill is one run with flat memory. The coverage ledger makes re-runs free: only
what was never asked and answered is fetched (`refetch: true` asks again; the upsert then writes only
real changes).

Point-in-time data (order books, 24h tickers, a real exchange's recent trades) cannot be fetched for the
past. For a past partition these assets fetch nothing from a ccxt exchange and say so in their metadata;
the current partition (the intraday schedule) takes a snapshot at each run. The synthetic exchange has a
deterministic past, so a backfill fills its snapshot history on a `snapshot_every` grid.
"""

# No `from __future__ import annotations`: Dagster reads the config and resource types of the asset
# signatures at definition time.
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from pipelines.partitions import DAILY, SINGLE_RUN_BACKFILL, WAREHOUSE_POOL
from pipelines.retries import NO_RUN_RETRY_ON_STEP_FAILURE, retry_transient
from pipelines.table_metadata import table_schema
from resources.dagster_resources import ExchangeResource, WarehouseResource
from resources.exchanges.client import supports_history
from resources.exchanges.gaps import GapReport, gap_report, lookback_window
from resources.exchanges.ingest import (
    IngestResult,
    LoadContext,
    ensure_source,
    ingest_candles,
    ingest_metrics,
    ingest_order_books,
    ingest_tickers,
    ingest_trades,
    rows_in_window,
)
from resources.exchanges.universe import ExchangeConfig, Universe
from resources.intervals import interval_to_timedelta
from resources.warehouse.load import LoadResult

GROUP = "market_data"
KINDS = {"ccxt", "pandas", "postgres"}
CODE_VERSION = "1"
# Transient errors only (exchange outages, rate limits, database disconnects and conflicts), with the back-off
# of the `exchanges` resource's `step_retry_*` settings; anything else fails the step at once, named.
RETRY_TRANSIENT = retry_transient(lambda context: context.resources.exchanges.step_backoff())


def _snapshot_note(
    config: ExchangeConfig, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> str | None:
    if start <= now < end:
        return None
    return "point-in-time snapshot: only taken while the partition is current, nothing fetched for this one"


def _trades_note(
    config: ExchangeConfig, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> str | None:
    since = now - pd.Timedelta(interval_to_timedelta(config.trades_lookback))
    if start >= since:
        return None
    return (
        f"recent trades only: nothing before {since.isoformat()} (`trades_lookback` {config.trades_lookback})"
    )


MARKET_DATA_ASSETS = ["ohlcv", "market_trades", "orderbook_snapshots", "market_metrics", "metric_series"]


class MarketDataConfig(dg.Config):
    """Run configuration shared by the market-data assets."""

    refetch: bool = False  # ask the exchange again for the whole window, ignoring the coverage ledger
    exchanges: list[str] = []  # only these exchanges of the universe (default: all)


def _table_metadata(table_name: str) -> dict[str, object]:
    return {"dagster/table_name": f"public.{table_name}", "dagster/column_schema": table_schema(table_name)}


def _window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    window = context.partition_time_window
    return pd.Timestamp(window.start).tz_convert(UTC), pd.Timestamp(window.end).tz_convert(UTC)


def _selected(universe: Universe, config: MarketDataConfig):
    chosen = [c for c in universe.exchanges if not config.exchanges or c.name in config.exchanges]
    unknown = set(config.exchanges) - {c.name for c in universe.exchanges}
    if unknown:
        raise dg.Failure(f"exchanges {sorted(unknown)} are not in the universe {universe.path}")
    return chosen


def _load_context(context, warehouse: WarehouseResource, exchanges: ExchangeResource) -> LoadContext:
    return LoadContext(warehouse.engine(), run_id=context.run.run_id, backoff=exchanges.backoff())


def _result(
    table: str,
    total: IngestResult,
    start: pd.Timestamp,
    end: pd.Timestamp,
    sources: list[str],
    row_count: int,
    notes: list[str] | None = None,
) -> dg.MaterializeResult:
    load = total.load
    metadata: dict[str, object] = {
        "rows_fetched": load.fetched,
        "rows_inserted": load.inserted,
        "rows_updated": load.updated,
        "rows_unchanged": load.unchanged,
        "rows_quarantined": load.quarantined,
        "quarantine_reasons": dg.MetadataValue.json(dict(load.quarantine_reasons)),
        "window": f"{start.isoformat()} / {end.isoformat()}",
        "time_range": (
            f"{load.min_time.isoformat()} / {load.max_time.isoformat()}"
            if load.min_time
            else "no rows loaded"
        ),
        "source": ", ".join(sources) or "none",
        "ranges_requested": total.ranges,
        **total.stats.as_metadata(),
        "dagster/row_count": row_count,
        **_table_metadata(table),
    }
    if notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))
    return dg.MaterializeResult(metadata=metadata)


def _asset(name: str, description: str):
    """The market-data asset decorator: partitioned, single-run backfills, transient errors retried."""
    asset = dg.asset(
        name=name,
        group_name=GROUP,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=WAREHOUSE_POOL,
        code_version=CODE_VERSION,
        kinds=KINDS,
        description=description,
        metadata=_table_metadata(name if name != "metric_series" else "timeseries_data"),
    )
    return lambda fn: asset(RETRY_TRANSIENT(fn))


def _materialize(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
    table: str,
    ingest: Callable[..., IngestResult],
    point_in_time: Callable[..., str | None] | None = None,
) -> dg.MaterializeResult:
    """Ingest the partition window (one day, or a backfill's whole range) for every selected exchange."""
    start, end = _window(context)
    configs = _selected(exchanges.universe(), config)
    ctx = _load_context(context, warehouse, exchanges)
    now = ctx.current_time()
    total = IngestResult(LoadResult(table))
    for exchange_config in configs:
        result = ingest(ctx, exchanges.client(exchange_config), exchange_config, start, end, config.refetch)
        context.log.info(
            f"{table} {exchange_config.name}: {result.load.fetched} rows fetched in {result.stats.requests} "
            f"requests, {result.load.inserted} inserted, {result.load.updated} updated"
        )
        total = total + result
    notes = [
        f"{c.name}: {note}"
        for c in configs
        if point_in_time
        and not supports_history(exchanges.client(c))
        and (note := point_in_time(c, start, end, now))
    ]
    if table == "timeseries_data":
        with warehouse.engine().begin() as conn:
            source_ids = [ensure_source(conn, c, s) for c in configs for s in c.metrics]
        rows = rows_in_window(warehouse.engine(), table, start, end, source_ids=source_ids)
    else:
        rows = rows_in_window(warehouse.engine(), table, start, end, exchanges=[c.name for c in configs])
    return _result(table, total, start, end, [c.source for c in configs], rows, notes)


@_asset("ohlcv", "Closed candles of every (exchange, symbol, interval) of the universe, gap-aware.")
def ohlcv(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    return _materialize(
        context,
        config,
        warehouse,
        exchanges,
        "ohlcv",
        lambda ctx, client, cfg, start, end, refetch: ingest_candles(
            ctx, client, cfg, start, end, refetch=refetch
        ),
    )


@_asset("market_trades", "Public trades: the synthetic tape of the whole day, a real exchange's recent tape.")
def market_trades(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    return _materialize(
        context,
        config,
        warehouse,
        exchanges,
        "market_trades",
        lambda ctx, client, cfg, start, end, refetch: ingest_trades(
            ctx, client, cfg, start, end, refetch=refetch
        ),
        point_in_time=_trades_note,
    )


@_asset("orderbook_snapshots", "Top-N order-book snapshots with best prices, spread and depth per side.")
def orderbook_snapshots(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    return _materialize(
        context,
        config,
        warehouse,
        exchanges,
        "orderbook_snapshots",
        lambda ctx, client, cfg, start, end, _: ingest_order_books(ctx, client, cfg, start, end),
        point_in_time=_snapshot_note,
    )


@_asset("market_metrics", "24h ticker metrics (prices, volumes, change, spread, Parkinson volatility).")
def market_metrics(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    return _materialize(
        context,
        config,
        warehouse,
        exchanges,
        "market_metrics",
        lambda ctx, client, cfg, start, end, _: ingest_tickers(ctx, client, cfg, start, end),
        point_in_time=_snapshot_note,
    )


@_asset(
    "metric_series", "Funding rates and open interest into timeseries_data, one `sources` row per series."
)
def metric_series(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    return _materialize(
        context,
        config,
        warehouse,
        exchanges,
        "timeseries_data",
        lambda ctx, client, cfg, start, end, refetch: ingest_metrics(
            ctx, client, cfg, start, end, refetch=refetch
        ),
    )


class GapConfig(dg.Config):
    """The window of a gap report: `start`/`end` (ISO dates or times, UTC), else the last `lookback_days`."""

    lookback_days: int = 7
    start: str | None = None
    end: str | None = None
    exchanges: list[str] = []


def _gap_window(config: GapConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    start, end = lookback_window(config.lookback_days)
    return _as_utc(config.start, start), _as_utc(config.end, end)


def _as_utc(text: str | None, default: pd.Timestamp) -> pd.Timestamp:
    """An ISO date or time from run config; without a zone it is UTC, like every time in the warehouse."""
    if not text:
        return default
    stamp = pd.Timestamp(text)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _report_metadata(report: GapReport) -> dict[str, object]:
    return {
        "gaps": report.gap_count,
        "missing_candles": report.missing,
        "answered_empty_candles": sum(s.answered_empty for s in report.series),
        "series": len(report.series),
        "report": dg.MetadataValue.md(report.markdown()),
    }


@dg.asset(
    name="coverage_report",
    group_name=GROUP,
    deps=["ohlcv"],
    code_version=CODE_VERSION,
    kinds={"pandas", "postgres"},
    description="Gap report per (exchange, symbol, interval): calendar-expected candles neither stored "
    "nor answered-empty, over the last days.",
)
def coverage_report(
    context: dg.AssetExecutionContext,
    config: GapConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> dg.MaterializeResult:
    start, end = _gap_window(config)
    report = gap_report(
        warehouse.engine(), exchanges.universe(), start, end, exchanges=set(config.exchanges) or None
    )
    return dg.MaterializeResult(metadata=_report_metadata(report))


@dg.op(pool=WAREHOUSE_POOL)
@RETRY_TRANSIENT
def find_gaps(
    context: dg.OpExecutionContext,
    config: GapConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> GapReport:
    """The gap report over the configured window."""
    start, end = _gap_window(config)
    report = gap_report(
        warehouse.engine(), exchanges.universe(), start, end, exchanges=set(config.exchanges) or None
    )
    context.add_output_metadata(_report_metadata(report))
    return report


@dg.op(pool=WAREHOUSE_POOL)
@RETRY_TRANSIENT
def backfill_gaps(
    context: dg.OpExecutionContext,
    report: GapReport,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> Iterator[dg.AssetMaterialization | dg.Output]:
    """Fetch exactly the missing ranges of the report; one `ohlcv` materialization per day touched."""
    universe = exchanges.universe()
    ctx = _load_context(context, warehouse, exchanges)
    total = IngestResult(LoadResult("ohlcv"))
    for name in dict.fromkeys(s.exchange for s in report.series if s.ranges):
        config = universe.exchange(name)
        ranges = {
            (s.symbol, s.interval): [(lo, hi) for lo, hi, _ in s.ranges]
            for s in report.series
            if s.exchange == name and s.ranges
        }
        total = total + ingest_candles(
            ctx,
            exchanges.client(config),
            config,
            report.start,
            report.end,
            series=list(ranges),
            ranges=ranges,
        )
    for day, fetched in sorted(total.days.items()):
        yield dg.AssetMaterialization(
            asset_key="ohlcv",
            partition=day,
            description="gap backfill",
            metadata={"rows_fetched": fetched, "run_rows_inserted": total.load.inserted},
        )
    remaining = gap_report(warehouse.engine(), universe, report.start, report.end)
    yield dg.Output(
        None,
        metadata={
            "ranges_backfilled": total.ranges,
            "rows_fetched": total.load.fetched,
            "rows_inserted": total.load.inserted,
            "rows_updated": total.load.updated,
            "rows_quarantined": total.load.quarantined,
            **total.stats.as_metadata(),
            "remaining_gaps": remaining.gap_count,
            "remaining_report": dg.MetadataValue.md(remaining.markdown()),
        },
    )


@dg.job(
    name="gap_backfill_job",
    description="Compute the gap report and fetch exactly the missing ranges.",
    tags=NO_RUN_RETRY_ON_STEP_FAILURE,
)
def gap_backfill_job() -> None:
    backfill_gaps(find_gaps())


market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=dg.AssetSelection.assets(*MARKET_DATA_ASSETS),
    description="Every market-data asset for one day (or a range of days, in one run).",
    tags=NO_RUN_RETRY_ON_STEP_FAILURE,
)


@dg.schedule(
    name="daily_market_data", cron_schedule="15 0 * * *", job=market_data_job, execution_timezone="UTC"
)
def daily_market_data(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's partition, complete: runs at 00:15 UTC once the last candles have settled."""
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"daily-{yesterday}", partition_key=yesterday)


@dg.schedule(
    name="intraday_market_data", cron_schedule="*/15 * * * *", job=market_data_job, execution_timezone="UTC"
)
def intraday_market_data(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Today's partition, topped up every 15 minutes (only the new candles are fetched) plus snapshots."""
    at: datetime = context.scheduled_execution_time.astimezone(UTC)
    return dg.RunRequest(run_key=f"intraday-{at:%Y-%m-%dT%H%M}", partition_key=at.date().isoformat())


@dg.schedule(
    name="nightly_gap_backfill", cron_schedule="45 1 * * *", job=gap_backfill_job, execution_timezone="UTC"
)
def nightly_gap_backfill(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Fill what the last week's runs missed (exchange outages, failed runs), after the daily load."""
    at: datetime = context.scheduled_execution_time.astimezone(UTC)
    return dg.RunRequest(run_key=f"gaps-{at:%Y-%m-%d}")


defs = dg.Definitions(
    assets=[ohlcv, market_trades, orderbook_snapshots, market_metrics, metric_series, coverage_report],
    jobs=[market_data_job, gap_backfill_job],
    schedules=[daily_market_data, intraday_market_data, nightly_gap_backfill],
    resources={"exchanges": ExchangeResource()},
)
