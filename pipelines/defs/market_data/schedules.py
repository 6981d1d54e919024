"""Market-data schedules: yesterday complete at 00:15, today topped up every 15 minutes, nightly gap backfill."""

from datetime import UTC, datetime

import dagster as dg

from pipelines.defs.market_data.jobs import gap_backfill_job, market_data_job
from pipelines.partitions import yesterday_of


@dg.schedule(
    name="daily_market_data", cron_schedule="15 0 * * *", job=market_data_job, execution_timezone="UTC"
)
def daily_market_data(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's partition, complete: runs at 00:15 UTC once the last candles have settled."""
    yesterday = yesterday_of(context)
    return dg.RunRequest(run_key=f"daily-{yesterday}", partition_key=yesterday)


@dg.schedule(
    name="intraday_market_data", cron_schedule="*/15 * * * *", job=market_data_job, execution_timezone="UTC"
)
def intraday_market_data(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Today's partition, topped up every 15 minutes (only the new candles are fetched) plus snapshots."""
    at: datetime = context.scheduled_execution_time.astimezone(UTC)
    return dg.RunRequest(run_key=f"intraday-{at:%Y-%m-%dT%H%M}", partition_key=at.date().isoformat())


@dg.schedule(
    name="nightly_gap_backfill", cron_schedule="45 1 * * *", job=gap_backfill_job, execution_timezone="UTC"
)
def nightly_gap_backfill(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Fill what the last week's runs missed (exchange outages, failed runs), after the daily load."""
    at: datetime = context.scheduled_execution_time.astimezone(UTC)
    return dg.RunRequest(run_key=f"gaps-{at:%Y-%m-%d}")
