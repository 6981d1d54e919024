"""The derived schedule: yesterday's partition once the daily market-data load has stored its last candles."""

import dagster as dg

from pipelines.defs.derived.jobs import derived_job
from pipelines.partitions import yesterday_of


@dg.schedule(
    name="daily_derived",
    cron_schedule="45 0 * * *",
    job=derived_job,
    execution_timezone="UTC",
    description="00:45 UTC, after daily_market_data: yesterday's partition of every derived asset (the tick "
    "of day D requests partition D-1, run key derived-<D-1>).",
)
def daily_derived(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's derived partition at 00:45 UTC, after the daily market-data load (00:15) has stored the
    day's last candles: features, forecasts, yesterday's forecast accuracy, signals to risk."""
    yesterday = yesterday_of(context)
    return dg.RunRequest(run_key=f"derived-{yesterday}", partition_key=yesterday)
