"""Maintenance: partitions, aggregates, compression, retention and stats (assets, ops, jobs, schedules)."""

import dagster as dg

from market_warehouse.pipelines.defs.maintenance.assets import ohlcv_aggregates, warehouse_stats
from market_warehouse.pipelines.defs.maintenance.jobs import aggregate_refresh, nightly_maintenance
from market_warehouse.pipelines.defs.maintenance.metadata import (
    POLICY_OPS,
    PolicyConfig,
    pieces_table,
    plan_metadata,
)
from market_warehouse.pipelines.defs.maintenance.schedules import (
    aggregate_refresh_schedule,
    nightly_maintenance_schedule,
)

defs = dg.Definitions(
    assets=[ohlcv_aggregates, warehouse_stats],
    jobs=[nightly_maintenance, aggregate_refresh],
    schedules=[nightly_maintenance_schedule, aggregate_refresh_schedule],
)

__all__ = [
    "POLICY_OPS",
    "PolicyConfig",
    "aggregate_refresh",
    "aggregate_refresh_schedule",
    "defs",
    "nightly_maintenance",
    "nightly_maintenance_schedule",
    "ohlcv_aggregates",
    "pieces_table",
    "plan_metadata",
    "warehouse_stats",
]
