"""Maintenance schedules: the nightly chain at 02:30 UTC, the aggregate refresh hourly (running by default)."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from pipelines.defs.maintenance.jobs import aggregate_refresh, nightly_maintenance


def _running_utc(
    name: str, job: dg.JobDefinition | UnresolvedAssetJobDefinition, cron: str
) -> dg.ScheduleDefinition:
    """A schedule in UTC that runs from the start: maintenance needs no one to switch it on."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


nightly_maintenance_schedule = _running_utc("nightly_maintenance_schedule", nightly_maintenance, "30 2 * * *")
aggregate_refresh_schedule = _running_utc("aggregate_refresh_schedule", aggregate_refresh, "5 * * * *")
