"""Market-data schedules: yesterday complete at 00:15, today topped up every 15 minutes, nightly gap backfill.

The two market-data schedules target the partitioned `market_data_job` and every tick's run request names
its partition (`partition_key`), so each tick and run reads "partition <day>" in the UI. They are written
out rather than built by `dg.build_schedule_from_partitioned_job`: that builder requests the *last*
partition at tick time, which under DAILY's `end_offset=1` is today, not the complete yesterday the
00:15 load wants, and it keys runs by partition, which would let only the first of the day's 96
intraday ticks run. (Dagster 1.13 shows "Partition set: None" on every schedule page, built either way:
`ScheduleSnap.from_def` sets no partition set name.)
"""

from datetime import datetime

import dagster as dg

from market_warehouse.pipelines.defs.market_data.jobs import gap_backfill_job, market_data_job
from market_warehouse.pipelines.partitions import utc_schedule, yesterday_request


def _today_topped_up(at: datetime) -> dg.RunRequest:
    """Today's partition, topped up (only the new candles are fetched) plus snapshots; one run per tick."""
    return dg.RunRequest(run_key=f"intraday-{at:%Y-%m-%dT%H%M}", partition_key=at.date().isoformat())


def _gaps_of_the_week(at: datetime) -> dg.RunRequest:
    """Fill what the last week's runs missed (exchange outages, failed runs), after the daily load."""
    return dg.RunRequest(run_key=f"gaps-{at:%Y-%m-%d}")


daily_market_data = utc_schedule(
    "daily_market_data",
    market_data_job,
    "15 0 * * *",
    "00:15 UTC: yesterday's partition of every market-data asset, complete (the tick of day D "
    "requests partition D-1, run key daily-<D-1>).",
    yesterday_request("daily"),
)
intraday_market_data = utc_schedule(
    "intraday_market_data",
    market_data_job,
    "*/15 * * * *",
    "Every 15 minutes: today's partition topped up (only new candles are fetched) and a "
    "point-in-time snapshot of order books and tickers; the tick names today's partition.",
    _today_topped_up,
)
nightly_gap_backfill = utc_schedule(
    "nightly_gap_backfill",
    gap_backfill_job,
    "45 1 * * *",
    "01:45 UTC: the gap report of the last 7 days and a fetch of exactly the missing candles "
    "(unpartitioned: one ohlcv materialization per day it filled).",
    _gaps_of_the_week,
)
