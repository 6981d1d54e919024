"""Market data from the exchanges of the universe: candles, trades, order books, ticker metrics, funding rates
and open interest.

Every asset is partitioned by UTC day and backfilled in a single run (`BackfillPolicy.single_run()`): a run
over a partition range walks its time window day by day, and each day is fetched and loaded in bounded
batches, so a 90-day backfill is one run with flat memory. The coverage ledger makes re-runs free: only
what was never asked and answered is fetched (`refetch: true` asks again; the upsert then writes only
real changes).

Point-in-time data (order books, 24h tickers, a real exchange's recent trades) cannot be fetched for the
past. For a past partition these assets fetch nothing from a ccxt exchange and say so in their metadata;
the current partition (the intraday schedule) takes a snapshot at each run. The synthetic exchange has a
deterministic past, so a backfill fills its snapshot history on a `snapshot_every` grid.

The six assets are built by one factory (`market_data_asset`) from their rows in `pipelines/datasets.py`
(name, table, description, kinds, ingest function, point-in-time note): a new dataset is a new row there.
"""

# No `from __future__ import annotations`: Dagster reads the config and resource types of the asset
# signatures at definition time.
import dagster as dg
import pandas as pd

from market_warehouse.pipelines.datasets import MARKET_DATA, Dataset, in_group
from market_warehouse.pipelines.defs.market_data.common import (
    CODE_VERSION,
    RETRY_TRANSIENT,
    GapConfig,
    MarketDataConfig,
    gap_report_of,
    load_context,
    report_metadata,
    selected,
    window,
)
from market_warehouse.pipelines.partitions import daily_dataset_asset
from market_warehouse.pipelines.table_metadata import table_metadata
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.exchanges.client import supports_history
from market_warehouse.resources.exchanges.ingest import IngestResult, day_chunks, rows_in_window
from market_warehouse.resources.warehouse.load import LoadResult

MARKET_DATASETS = in_group(MARKET_DATA)
MARKET_DATA_ASSETS = [d.asset for d in MARKET_DATASETS]


def _day_metadata(
    total: IngestResult, start: pd.Timestamp, end: pd.Timestamp, sources: list[str], row_count: int
) -> dict[str, object]:
    """The counts of one partition (one UTC day): what its load did and the rows it holds now."""
    load = total.load
    return {
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
    }


def _stored_rows(
    warehouse: WarehouseResource, ds: Dataset, configs: list, start: pd.Timestamp, end: pd.Timestamp
) -> int:
    """Rows of the dataset's table in `[start, end)` from the selected exchanges: a partition's row count."""
    return rows_in_window(warehouse.engine(), ds.table, start, end, exchanges=[c.name for c in configs])


def _materialize(
    context: dg.AssetExecutionContext,
    config: MarketDataConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
    ds: Dataset,
) -> dg.MaterializeResult:
    """Ingest the partition window (one day, or a backfill's range) day by day for every selected exchange.

    Each day is one partition: its materialization carries its own counts and stored row count
    (`context.add_asset_metadata(..., partition_key=day)`), not the whole range's, and its loads are
    labelled with the day (the quarantine rows of a day are found by its partition key).
    """
    table, ingest, point_in_time = ds.table, ds.ingest, ds.point_in_time
    start, end = window(context)
    configs = selected(exchanges.universe(), config)
    ctx = load_context(context, warehouse, exchanges)
    now = ctx.current_time()
    sources = [c.source for c in configs]
    run_total = {c.name: IngestResult(LoadResult(table)) for c in configs}
    for day_start, day_end, day in day_chunks(start, end):
        total = IngestResult(LoadResult(table))
        for exchange_config in configs:
            client = exchanges.client(exchange_config)
            result = ingest(ctx, client, exchange_config, day_start, day_end, config.refetch)
            run_total[exchange_config.name] = run_total[exchange_config.name] + result
            total = total + result
        metadata = _day_metadata(
            total, day_start, day_end, sources, _stored_rows(warehouse, ds, configs, day_start, day_end)
        )
        notes = [f"skipped: {n}" for n in total.notes] + [
            f"{c.name}: {note}"
            for c in configs
            if point_in_time
            and not supports_history(exchanges.client(c))
            and (note := point_in_time(c, day_start, day_end, now))
        ]
        if notes:
            metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))
        context.add_asset_metadata(metadata, partition_key=day)
    for name, result in run_total.items():
        context.log.info(
            f"{table} {name}: {result.load.fetched} rows fetched in {result.stats.requests} requests, "
            f"{result.load.inserted} inserted, {result.load.updated} updated"
        )
    return dg.MaterializeResult(metadata=table_metadata(table))


def market_data_asset(ds: Dataset) -> dg.AssetsDefinition:
    """The asset of a market-data dataset: daily partitions, single-run backfills, transient errors retried."""

    @daily_dataset_asset(ds, CODE_VERSION)
    @RETRY_TRANSIENT
    def materialize(
        context: dg.AssetExecutionContext,
        config: MarketDataConfig,
        warehouse: WarehouseResource,
        exchanges: ExchangeResource,
    ) -> dg.MaterializeResult:
        return _materialize(context, config, warehouse, exchanges, ds)

    return materialize


ASSETS = {d.asset: market_data_asset(d) for d in MARKET_DATASETS}
ohlcv = ASSETS["ohlcv"]
market_trades = ASSETS["market_trades"]
orderbook_snapshots = ASSETS["orderbook_snapshots"]
market_metrics = ASSETS["market_metrics"]
funding_rates = ASSETS["funding_rates"]
open_interest = ASSETS["open_interest"]


@dg.asset(
    name="coverage_report",
    group_name=MARKET_DATA,
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
    return dg.MaterializeResult(metadata=report_metadata(gap_report_of(config, warehouse, exchanges)))
