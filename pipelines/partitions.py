"""Partitioning and concurrency shared by every asset: UTC days, and the pools that bound DB load.

A backfill of N days is a single run (`BackfillPolicy.single_run()`) that loads in bounded batches.

The daily partitions start where the universe says the history starts (`history_start` in the universe
file, overridden by `MW_HISTORY_START`), by default on `DEFAULT_HISTORY_START` or, in a home the demo ran
in, where its window starts (`pipelines.history`): the UI then shows the days the warehouse is meant to
hold, not a thousand empty ones. The start is a fixed date, not "N days ago":
a partitions definition that moved every day would change the assets' definitions (and their backfills'
partition sets) daily.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from market_warehouse.pipelines.history import history_start
from market_warehouse.pipelines.table_metadata import table_metadata
from market_warehouse.resources import clock

if TYPE_CHECKING:
    from market_warehouse.pipelines.datasets import Dataset

DAILY = dg.DailyPartitionsDefinition(start_date=history_start().isoformat(), timezone="UTC", end_offset=1)
SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()

# Concurrency pools (limits are set in dagster.yaml / the Dagster UI): warehouse writes vs maintenance.
WAREHOUSE_POOL = "warehouse"
MAINTENANCE_POOL = "maintenance"


@contextlib.contextmanager
def partitions_at_clock() -> Iterator[None]:
    """Inside the block, Dagster's partitions end at the project's clock (`resources.clock`).

    Dagster decides which partition keys exist from its own current time (DAILY ends with today's key).
    Under a pinned clock (`market-warehouse demo --end`, tests of 2028-02-29 on a machine dated 2026) the
    window's keys must exist and none after the pinned day may, so runs started inside this block see
    `clock.now()` as Dagster's partition time. Schedules keep Dagster's time: they tick on the real one.
    """
    with dg.partition_loading_context(effective_dt=clock.now()):
        yield


def utc_schedule(
    name: str,
    job: dg.JobDefinition | UnresolvedAssetJobDefinition,
    cron: str,
    description: str,
    request: Callable[[datetime], dg.RunRequest] | None = None,
    **kwargs: Any,
) -> dg.ScheduleDefinition:
    """A schedule ticking in UTC, every schedule of the project: `request` makes a tick's run request from
    the tick's UTC time (the partition and run key it names); without it the tick runs the job as it is.
    `kwargs`: e.g. `default_status`."""
    common = {"name": name, "job": job, "cron_schedule": cron, "execution_timezone": "UTC"}
    if request is None:
        return dg.ScheduleDefinition(**common, description=description, **kwargs)

    @dg.schedule(**common, description=description, **kwargs)
    def evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return request(context.scheduled_execution_time.astimezone(UTC))

    return evaluate


def yesterday_request(run_key_prefix: str) -> Callable[[datetime], dg.RunRequest]:
    """Run request of a daily tick: the partition of the UTC day before the tick, complete by then, with
    run key `<prefix>-<day>` (one run per day, however often the tick is evaluated)."""

    def request(at: datetime) -> dg.RunRequest:
        yesterday = (at - timedelta(days=1)).date().isoformat()
        return dg.RunRequest(run_key=f"{run_key_prefix}-{yesterday}", partition_key=yesterday)

    return request


def daily_dataset_asset(ds: Dataset, code_version: str, **kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    """The decorator of a dataset's asset: daily partitions backfilled in one run, in the warehouse pool,
    with its table's metadata (`kwargs`: deps and the like)."""
    with warnings.catch_warnings():
        # `backfill_policy` is "beta" in Dagster 1.13: known and chosen; the warning, once per asset at every
        # import of the code location (UI, daemon, every run worker), flooded the UI's logs.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _dataset_asset(ds, code_version, **kwargs)


def _dataset_asset(ds: Dataset, code_version: str, **kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    return dg.asset(
        name=ds.asset,
        group_name=ds.group,
        description=ds.description,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=WAREHOUSE_POOL,
        code_version=code_version,
        kinds=set(ds.kinds),
        metadata=table_metadata(ds.table),
        **kwargs,
    )
