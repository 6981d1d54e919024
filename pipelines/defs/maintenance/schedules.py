"""Maintenance schedules: the nightly chain at 02:30 UTC, the aggregate refresh hourly (running by default)."""

import dagster as dg

from market_warehouse.pipelines.defs.maintenance.jobs import aggregate_refresh, nightly_maintenance
from market_warehouse.pipelines.partitions import utc_schedule

# Running by default: maintenance needs no one to switch it on.
RUNNING = dg.DefaultScheduleStatus.RUNNING

nightly_maintenance_schedule = utc_schedule(
    "nightly_maintenance_schedule",
    nightly_maintenance,
    "30 2 * * *",
    "02:30 UTC, running by default: the nightly_maintenance chain, in the order its job describes "
    "(unpartitioned: it maintains whole tables).",
    default_status=RUNNING,
)
aggregate_refresh_schedule = utc_schedule(
    "aggregate_refresh_schedule",
    aggregate_refresh,
    "5 * * * *",
    "Hourly at :05, running by default: ohlcv_1h / ohlcv_1d rebuilt for the hours the loads touched.",
    default_status=RUNNING,
)
