"""Maintenance on schedules: partitions, aggregates, compression, retention and stats (UTC).

- `nightly_maintenance` (02:30 UTC): plan_maintenance → create_partitions → refresh_aggregates →
  compress_chunks → apply_retention → collect_stats, chained so the order holds: retention never runs
  before the refresh that aggregates the candles it drops, and compression does not convert chunks still
  being refreshed. The first step only reads: it records what the others are about to do (the same plan
  as `market-warehouse maintenance plan`), so the run shows what it meant to drop next to what it dropped.
- `aggregate_refresh` (hourly, 5 minutes past): materializes the assets `ohlcv_1h` and `ohlcv_1d`.

The aggregates and the stats are assets (group "maintenance") so the lineage graph shows
ohlcv → ohlcv_1h → ohlcv_1d and the stats table; the nightly job's ops record materializations of the
same assets. Every op and asset runs in the `maintenance` pool, apart from the loads' `warehouse` pool.
The work itself is in `resources.maintenance`, callable without Dagster.
"""

import dagster as dg

from market_warehouse.pipelines.datasets import dataset
from market_warehouse.pipelines.defs.maintenance.metadata import (
    GROUP,
    OHLCV,
    OHLCV_1D,
    OHLCV_1H,
    STATS_COLUMNS,
    WAREHOUSE_STATS,
    aggregate_events,
    stats_metadata,
)
from market_warehouse.pipelines.partitions import MAINTENANCE_POOL
from market_warehouse.pipelines.table_metadata import table_metadata
from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.maintenance import aggregates, stats


def _aggregate_spec(key: dg.AssetKey, upstream: dg.AssetKey) -> dg.AssetSpec:
    """An aggregate's spec from its row of `pipelines/datasets.py`."""
    declared = dataset(key.to_user_string())
    return dg.AssetSpec(
        key,
        deps=[upstream],
        group_name=GROUP,
        description=declared.description,
        kinds=set(declared.kinds),
        metadata=table_metadata(declared.table),
    )


@dg.multi_asset(
    specs=[_aggregate_spec(OHLCV_1H, OHLCV), _aggregate_spec(OHLCV_1D, OHLCV_1H)],
    pool=MAINTENANCE_POOL,
)
def ohlcv_aggregates(warehouse: WarehouseResource):
    """Refresh the aggregates where the loads recorded dirty hours (a no-op when nothing changed)."""
    result = aggregates.refresh_aggregates(warehouse.engine(), warehouse.capabilities())
    for event in aggregate_events(result):
        yield dg.MaterializeResult(asset_key=event.asset_key, metadata=event.metadata)


@dg.asset(
    key=WAREHOUSE_STATS,
    deps=[OHLCV_1H, OHLCV_1D],
    group_name=GROUP,
    pool=MAINTENANCE_POOL,
    description="Per table: size, rows, chunks/partitions, compression ratio, oldest/newest time (one "
    "metadata table per materialization).",
    kinds={"postgres"},
    metadata={"dagster/column_schema": STATS_COLUMNS},  # of its "tables" metadata: no warehouse table
)
def warehouse_stats(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=stats_metadata(stats.collect_stats(warehouse.engine())))
