"""The maintenance jobs: the nightly chain of ops, and the hourly aggregate refresh."""

# No `from __future__ import annotations`: Dagster reads the config and resource types of the op signatures.
import dagster as dg

from market_warehouse.pipelines.defs.maintenance.metadata import (
    GROUP,
    OHLCV_1D,
    OHLCV_1H,
    WAREHOUSE_STATS,
    PolicyConfig,
    aggregate_events,
    pieces_table,
    plan_metadata,
    stats_metadata,
)
from market_warehouse.pipelines.partitions import MAINTENANCE_POOL
from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.maintenance import aggregates, compression, partitions, retention, stats
from market_warehouse.resources.maintenance.plan import plan_maintenance
from market_warehouse.resources.maintenance.policy import load_policy


@dg.op(name="plan_maintenance", pool=MAINTENANCE_POOL, out=dg.Out(dg.Nothing))
def plan_maintenance_step(
    context: dg.OpExecutionContext, config: PolicyConfig, warehouse: WarehouseResource
) -> None:
    """Read-only: what this run will create, refresh, compress and drop (rows, bytes), before it does."""
    plan = plan_maintenance(warehouse.engine(), load_policy(config.universe), caps=warehouse.capabilities())
    context.add_output_metadata(plan_metadata(plan))


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def create_partitions(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Plain PostgreSQL: partitions ahead of now, and partitions for rows sitting in DEFAULT."""
    result = partitions.manage_partitions(warehouse.engine(), caps=warehouse.capabilities())
    context.add_output_metadata(result.metadata())


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def refresh_aggregates(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Rebuild the 1h/1d buckets of the hours the loads touched since the last refresh."""
    result = aggregates.refresh_aggregates(warehouse.engine(), warehouse.capabilities())
    for event in aggregate_events(result):
        context.log_event(event)
    context.add_output_metadata(result.metadata())


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def compress_chunks(
    context: dg.OpExecutionContext, config: PolicyConfig, warehouse: WarehouseResource
) -> None:
    """Convert chunks older than the policy's age to the columnstore (or report it unavailable)."""
    policy = load_policy(config.universe)
    result = compression.compress_chunks(warehouse.engine(), policy, caps=warehouse.capabilities())
    context.add_output_metadata(result.metadata())


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def apply_retention(
    context: dg.OpExecutionContext, config: PolicyConfig, warehouse: WarehouseResource
) -> None:
    """Drop expired chunks/partitions of the tables the policy lists (none by default), each recorded in
    system_events; refreshes the aggregates again first, so late loads are kept. With a cold tier the rows
    are exported first; a failed export keeps its piece and fails the step once the others are done."""
    policy = load_policy(config.universe)
    result = retention.apply_retention(
        warehouse.engine(), policy, caps=warehouse.capabilities(), run_id=context.run_id
    )
    if result.refresh is not None and result.refresh.dirty_hours:
        for event in aggregate_events(result.refresh):
            context.log_event(event)
    metadata = {**policy.describe(), **result.metadata(), "removed": pieces_table(result.removed)}
    failed = result.of(retention.EXPORT_FAILED)
    if failed:  # the pieces stay; a green run would hide that the cold tier is broken
        raise dg.Failure(
            description=f"{len(failed)} piece(s) kept: the export to the cold tier failed ({failed[0].error})",
            metadata=metadata,
        )
    context.add_output_metadata(metadata)


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def collect_stats(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Analyze, then measure every table; recorded as a materialization of `warehouse_stats`."""
    metadata = stats_metadata(stats.collect_stats(warehouse.engine()))
    context.log_event(dg.AssetMaterialization(asset_key=WAREHOUSE_STATS, metadata=metadata))
    context.add_output_metadata(metadata)


@dg.job(
    description=(
        "Nightly: plan (read-only) → partitions → refresh aggregates → compress → retention → stats, "
        "in that order."
    ),
    tags={"domain": GROUP},
)
def nightly_maintenance() -> None:
    planned = plan_maintenance_step()
    refreshed = refresh_aggregates(after=create_partitions(after=planned))
    collect_stats(after=apply_retention(after=compress_chunks(after=refreshed)))


aggregate_refresh = dg.define_asset_job(
    "aggregate_refresh",
    selection=dg.AssetSelection.assets(OHLCV_1H, OHLCV_1D),
    description="Hourly: refresh ohlcv_1h / ohlcv_1d from the dirty-window log.",
    tags={"domain": GROUP},
)
