"""The one loop of the derived assets: compute a day, record it.

Every derived asset walks its run's partition window day by day, in order (a backfill of N days is one run,
and risk for day D sees the equity of the days before it). For each day the asset's *step* computes and
writes the day's rows and says what it did (`DayOutput`); the driver then writes the day's `lineage` row
in the step's transaction and, after the last day, builds the Dagster result: column lineage and the run's
plots shared by the run's materializations, and each day's own row count, rows in / out / written and data
version on that day's materialization only.

An asset is a `DerivedSteps` class (its name, upstream deps, code version, the step of a day and the run's
extra metadata); `derived_asset` makes the Dagster asset of it.

Data versions: a day's version is a hash of the rows the asset owns for the day, so equal content has an
equal version whichever run wrote it; it is in the day's `data_version` metadata and its `lineage` row.
Dagster 1.13 stamps ONE data version (the `dagster/data_version` tag) on every partition a run
materializes (no per-partition version for materializations: dagster-io/dagster#34013). So a run of one
day, the schedules' and a multi-run backfill's, stamps that day's version, which is then Dagster's data
version of the partition; a single-run range stamps a version of the run (a hash of its days' versions),
which changes when any day of the range changes, while each day's metadata keeps its own.
"""

# No `from __future__ import annotations`: Dagster reads the resource types of `derived_asset`'s signature.
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from market_warehouse.pipelines.datasets import dataset, table_of
from market_warehouse.pipelines.defs.derived.lineage import column_lineage
from market_warehouse.pipelines.defs.derived.resources import AnalyticsResource
from market_warehouse.pipelines.partitions import daily_dataset_asset
from market_warehouse.resources.analytics import lineage
from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.warehouse.load import LoadResult, load_frame


@dataclass(frozen=True)
class Day:
    """One UTC day of the partition window: [start, end) and its partition key."""

    start: datetime
    end: datetime
    key: str


@dataclass
class DayOutput:
    """What a step did for one day: the rows it owns (their content version), read and wrote."""

    version: str  # lineage.content_version of the rows the asset owns for the day
    rows_in: int
    rows_out: int
    written: int  # rows inserted or updated (0 on a re-run with equal content)
    upstream: list[dict]  # the inputs of the lineage row (lineage.source_entries, derived_entries)
    row_count: int  # rows of the asset for the day in its table (Dagster's dagster/row_count)
    metadata: dict = field(default_factory=dict)  # the lineage row's metadata
    recorded_rows_out: int | None = None  # rows_out of the lineage row when it counts more than the day's
    note: str | None = None  # shown on the day's materialization (e.g. why the day was not computed)


# A step opens the transaction the lineage row joins: `with step(day) as (conn, output): ...`.
Step = Callable[[Day], AbstractContextManager[tuple[sa.Connection, DayOutput]]]


def days(context: dg.AssetExecutionContext) -> Iterator[Day]:
    """UTC days of the run's partition window, in order: a backfill of N days is one run."""
    window = context.partition_time_window
    day = pd.Timestamp(window.start).tz_convert(UTC)
    end = pd.Timestamp(window.end).tz_convert(UTC)
    while day < end:
        nxt = min(day + pd.Timedelta(days=1), end)
        yield Day(day.to_pydatetime(), nxt.to_pydatetime(), day.strftime("%Y-%m-%d"))
        day = nxt


@dataclass
class DayRun:
    """The days a run computed: what `materialize_days` returns, turned into Dagster's result."""

    asset: str
    outputs: dict[str, DayOutput] = field(default_factory=dict)
    last: Day | None = None  # the last day computed (its end is the window's end)

    @property
    def row_count(self) -> int:
        """Rows of the asset over the window (the sum of the days' stored rows)."""
        return sum(o.row_count for o in self.outputs.values())

    def partition_metadata(self) -> dict[str, dict]:
        """Each day's own counts, by partition key: a range run's materializations are one per day, and
        each says what its day holds (`dagster/row_count`: the day's stored rows) and what it wrote."""
        return {
            key: {
                "dagster/row_count": o.row_count,
                "rows_in": o.rows_in,
                "rows_out": o.rows_out,
                "rows_written": o.written,
                "data_version": o.version,
                **({"note": o.note} if o.note else {}),
            }
            for key, o in self.outputs.items()
        }

    def data_version(self) -> str:
        """The version Dagster stamps on every partition of the run: the day's own when the run has one
        day, else a hash of the days' versions (see the module docstring)."""
        outs = self.outputs
        if len(outs) == 1:
            return next(iter(outs.values())).version
        return lineage.content_version([{"day": k, "version": o.version} for k, o in outs.items()])

    def result(self, extra: dict | None = None) -> dg.MaterializeResult:
        """What every day of the run shares: column lineage, the asset's extra metadata (plots, summaries
        of the run), and the data version Dagster stamps on all of them (`data_version()`)."""
        metadata = {"dagster/column_lineage": column_lineage(self.asset), **(extra or {})}
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(self.data_version()))


def materialize_days(context: dg.AssetExecutionContext, asset: str, code_version: str, step: Step) -> DayRun:
    """Run `step` for every day of the window and record each day's lineage row in the step's transaction."""
    run = DayRun(asset)
    for day in days(context):
        with step(day) as (conn, output):
            _record(conn, context, asset, code_version, day.key, output)
        run.outputs[day.key] = output
        run.last = day
    return run


def _record(
    conn: sa.Connection,
    context: dg.AssetExecutionContext,
    asset: str,
    code_version: str,
    key: str,
    output: DayOutput,
) -> None:
    rows_out = output.rows_out if output.recorded_rows_out is None else output.recorded_rows_out
    lineage.record(
        conn,
        lineage.LineageRecord(
            asset_key=asset,
            partition_key=key,
            run_id=context.run.run_id,
            code_version=code_version,
            data_version=output.version,
            upstream=output.upstream,
            rows_in=output.rows_in,
            rows_out=rows_out,
            metadata={"table": table_of(asset), **output.metadata},
        ),
    )


def frames_concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The day's frames as one (an empty frame when no series had rows)."""
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class DerivedSteps:
    """One derived asset: what it is (name, upstream, code version) and how it computes one day.

    An instance lives for one run (`context`, the warehouse `engine`, the `analytics` settings); state that
    the run's metadata needs after the last day (plots, snapshots) is kept on it.
    """

    name: ClassVar[str]
    deps: ClassVar[list]
    code_version: ClassVar[str]

    def __init__(self, context: dg.AssetExecutionContext, engine: sa.Engine, analytics: AnalyticsResource):
        self.context, self.engine, self.analytics = context, engine, analytics

    def day(self, day: Day) -> AbstractContextManager[tuple[sa.Connection, DayOutput]]:
        """Compute and write the day; yield the open transaction (the lineage row joins it) and the output."""
        raise NotImplementedError

    def load_day(self, frame: pd.DataFrame, day: Day, source: str) -> LoadResult:
        """Validate, quarantine and upsert the day's rows into the asset's table (`load_frame`)."""
        run_id = self.context.run.run_id
        return load_frame(
            self.engine, table_of(self.name), frame, run_id=run_id, partition_key=day.key, source=source
        )

    def extra(self, run: DayRun) -> dict:
        """Metadata of the whole run beyond the driver's counts (plots, summaries)."""
        return {}


def derived_asset(steps: type[DerivedSteps]) -> dg.AssetsDefinition:
    """The Dagster asset of a derived dataset: daily partitions, its dataset's table and kinds, the day loop."""

    @daily_dataset_asset(dataset(steps.name), steps.code_version, deps=steps.deps)
    def compute(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, analytics: AnalyticsResource
    ) -> dg.MaterializeResult:
        asset = steps(context, warehouse.engine(), analytics)
        run = materialize_days(context, steps.name, steps.code_version, asset.day)
        for key, metadata in run.partition_metadata().items():
            context.add_asset_metadata(metadata, partition_key=key)
        return run.result(asset.extra(run))

    return compute
