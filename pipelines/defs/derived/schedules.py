"""The derived schedule: yesterday's partition once the daily market-data load has stored its last candles."""

from market_warehouse.pipelines.defs.derived.jobs import derived_job
from market_warehouse.pipelines.partitions import utc_schedule, yesterday_request

# 00:45, after the daily market-data load (00:15) has stored the day's last candles: features, forecasts,
# yesterday's forecast accuracy, signals to risk.
daily_derived = utc_schedule(
    "daily_derived",
    derived_job,
    "45 0 * * *",
    "00:45 UTC, after daily_market_data: yesterday's partition of every derived asset (the tick "
    "of day D requests partition D-1, run key derived-<D-1>).",
    yesterday_request("derived"),
)
