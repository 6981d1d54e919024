"""Market-data jobs: every market-data asset for a window, and the gap backfill (find gaps, fetch them)."""

# No `from __future__ import annotations`: Dagster reads the config and resource types of the op signatures.
from collections.abc import Iterator

import dagster as dg

from market_warehouse.pipelines.defs.market_data.assets import MARKET_DATA_ASSETS
from market_warehouse.pipelines.defs.market_data.common import (
    RETRY_TRANSIENT,
    GapConfig,
    gap_report_of,
    load_context,
    report_metadata,
)
from market_warehouse.pipelines.partitions import WAREHOUSE_POOL
from market_warehouse.pipelines.retries import NO_RUN_RETRY_ON_STEP_FAILURE
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.exchanges.gaps import GapReport, gap_report
from market_warehouse.resources.exchanges.ingest import IngestResult, ingest_candles
from market_warehouse.resources.warehouse.load import LoadResult


@dg.op(pool=WAREHOUSE_POOL)
@RETRY_TRANSIENT
def find_gaps(
    context: dg.OpExecutionContext,
    config: GapConfig,
    warehouse: WarehouseResource,
    exchanges: ExchangeResource,
) -> GapReport:
    """The gap report over the configured window."""
    report = gap_report_of(config, warehouse, exchanges)
    context.add_output_metadata(report_metadata(report))
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
    ctx = load_context(context, warehouse, exchanges)
    total = IngestResult(LoadResult("ohlcv"))
    for name in dict.fromkeys(s.exchange for s in report.series if s.ranges):
        config = universe.exchange(name)
        ranges = {
            (s.symbol, s.interval, s.price): [(lo, hi) for lo, hi, _ in s.ranges]
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
