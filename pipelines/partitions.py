"""Partitioning and concurrency shared by every asset: UTC days, and the pools that bound DB load.

A backfill of N days is a single run (`BackfillPolicy.single_run()`) that loads in bounded batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg

from pipelines.table_metadata import table_metadata
from resources import clock

if TYPE_CHECKING:
    from pipelines.datasets import Dataset

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
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


def yesterday_of(context: dg.ScheduleEvaluationContext) -> str:
    """The partition key of the UTC day before a schedule tick (daily schedules load the complete day)."""
    at = context.scheduled_execution_time.astimezone(UTC)
    return (at - timedelta(days=1)).date().isoformat()


def daily_dataset_asset(ds: Dataset, code_version: str, **kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    """The decorator of a dataset's asset: daily partitions backfilled in one run, in the warehouse pool,
    with its table's metadata (`kwargs`: deps and the like)."""
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
