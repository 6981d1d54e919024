"""Maintenance schedules: the nightly chain at 02:30 UTC, the aggregate refresh hourly (running by default)."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from pipelines.defs.maintenance.jobs import aggregate_refresh, nightly_maintenance


def _running_utc(
    name: str, job: dg.JobDefinition | UnresolvedAssetJobDefinition, cron: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule in UTC that runs from the start: maintenance needs no one to switch it on."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        description=description,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


nightly_maintenance_schedule = _running_utc(
    "nightly_maintenance_schedule",
    nightly_maintenance,
    "30 2 * * *",
    "02:30 UTC, running by default: the nightly_maintenance chain, in the order its job describes "
    "(unpartitioned: it maintains whole tables).",
)
aggregate_refresh_schedule = _running_utc(
    "aggregate_refresh_schedule",
    aggregate_refresh,
    "5 * * * *",
    "Hourly at :05, running by default: ohlcv_1h / ohlcv_1d rebuilt for the hours the loads touched.",
)
