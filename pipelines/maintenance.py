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

from pipelines.partitions import MAINTENANCE_POOL
from resources.dagster_resources import WarehouseResource
from resources.maintenance import aggregates, compression, partitions, retention, stats
from resources.maintenance.plan import MaintenancePlan, plan_maintenance
from resources.maintenance.policy import load_policy
from resources.maintenance.retention import PieceAction

OHLCV = dg.AssetKey("ohlcv")
OHLCV_1H = dg.AssetKey("ohlcv_1h")
OHLCV_1D = dg.AssetKey("ohlcv_1d")
WAREHOUSE_STATS = dg.AssetKey("warehouse_stats")
GROUP = "maintenance"


class PolicyConfig(dg.Config):
    """Which universe file's `maintenance:` section applies (empty: MW_UNIVERSE, else the shipped one)."""

    universe: str | None = None


# The nightly ops that read the policy: give them all the same `PolicyConfig` (the plan must see the policy
# the steps apply).
POLICY_OPS = ("plan_maintenance", "compress_chunks", "apply_retention")


def _aggregate_events(result: aggregates.RefreshResult) -> list[dg.AssetMaterialization]:
    common = result.metadata()
    return [
        dg.AssetMaterialization(asset_key=OHLCV_1H, metadata={**common, "rows_rebuilt": result.rows_1h}),
        dg.AssetMaterialization(asset_key=OHLCV_1D, metadata={**common, "rows_rebuilt": result.rows_1d}),
    ]


_PIECE_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("table", "string"),
        dg.TableColumn("piece", "string", description="chunk or partition"),
        dg.TableColumn("action", "string", description="dropped, or rows deleted (some intervals of ohlcv)"),
        dg.TableColumn("intervals", "string", description="expired candle intervals (ohlcv), else all"),
        dg.TableColumn("range_start", "string"),
        dg.TableColumn("range_end", "string"),
        dg.TableColumn("rows", "int", description="counted just before the drop"),
        dg.TableColumn("bytes", "int", description="size of a dropped piece; empty for deleted rows"),
    ]
)


def pieces_table(actions: list[PieceAction]) -> dg.TableMetadataValue:
    """Pieces dropped (or to drop) as a metadata table, one record per chunk/partition."""
    records = []
    for action in actions:
        record = action.record()
        records.append(dg.TableRecord({c.name: record[c.name] for c in _PIECE_COLUMNS.columns}))
    return dg.MetadataValue.table(records=records, schema=_PIECE_COLUMNS)


def plan_metadata(plan: MaintenancePlan) -> dict[str, object]:
    """The plan as run metadata: the readable text, counts, the pieces to drop, and everything as JSON."""
    return {
        "plan": dg.MetadataValue.md(plan.markdown()),
        **plan.summary(),
        "to_drop": pieces_table(plan.drops),
        "plan_json": dg.MetadataValue.json(plan.as_dict()),
    }


def _stats_metadata(measured: stats.WarehouseStats) -> dict[str, object]:
    return {
        "tables": dg.MetadataValue.md(measured.markdown()),
        "backend": measured.backend,
        "seconds": round(measured.seconds, 3),
        **measured.numeric(),
    }


# ---------------------------------------------------------------------------------------------------- ops


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
    for event in _aggregate_events(result):
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
    system_events; refreshes the aggregates again first, so late loads are kept."""
    policy = load_policy(config.universe)
    result = retention.apply_retention(
        warehouse.engine(), policy, caps=warehouse.capabilities(), run_id=context.run_id
    )
    if result.refresh is not None and result.refresh.dirty_hours:
        for event in _aggregate_events(result.refresh):
            context.log_event(event)
    context.add_output_metadata(
        {**policy.describe(), **result.metadata(), "removed": pieces_table(result.removed)}
    )


@dg.op(pool=MAINTENANCE_POOL, ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def collect_stats(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Analyze, then measure every table; recorded as a materialization of `warehouse_stats`."""
    metadata = _stats_metadata(stats.collect_stats(warehouse.engine()))
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


# ------------------------------------------------------------------------------------------------- assets


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            OHLCV_1H,
            deps=[OHLCV],
            group_name=GROUP,
            description="Hourly OHLCV of the 1m candles (continuous aggregate or rollup table).",
        ),
        dg.AssetSpec(
            OHLCV_1D,
            deps=[OHLCV_1H],
            group_name=GROUP,
            description="Daily OHLCV built from ohlcv_1h.",
        ),
    ],
    pool=MAINTENANCE_POOL,
)
def ohlcv_aggregates(warehouse: WarehouseResource):
    """Refresh the aggregates where the loads recorded dirty hours (a no-op when nothing changed)."""
    result = aggregates.refresh_aggregates(warehouse.engine(), warehouse.capabilities())
    for event in _aggregate_events(result):
        yield dg.MaterializeResult(asset_key=event.asset_key, metadata=event.metadata)


@dg.asset(
    key=WAREHOUSE_STATS,
    deps=[OHLCV_1H, OHLCV_1D],
    group_name=GROUP,
    pool=MAINTENANCE_POOL,
    description="Per table: size, rows, chunks/partitions, compression ratio, oldest/newest time.",
)
def warehouse_stats(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_stats_metadata(stats.collect_stats(warehouse.engine())))


aggregate_refresh = dg.define_asset_job(
    "aggregate_refresh",
    selection=dg.AssetSelection.assets(OHLCV_1H, OHLCV_1D),
    description="Hourly: refresh ohlcv_1h / ohlcv_1d from the dirty-window log.",
    tags={"domain": GROUP},
)

nightly_maintenance_schedule = dg.ScheduleDefinition(
    name="nightly_maintenance_schedule",
    job=nightly_maintenance,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

aggregate_refresh_schedule = dg.ScheduleDefinition(
    name="aggregate_refresh_schedule",
    job=aggregate_refresh,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[ohlcv_aggregates, warehouse_stats],
    jobs=[nightly_maintenance, aggregate_refresh],
    schedules=[nightly_maintenance_schedule, aggregate_refresh_schedule],
)
