"""Dagster asset checks of the data-quality domain: GX suite report, quarantine fraction, unique key.

`quality_checks(asset_key, dataset, partitioned=...)` builds three checks for an asset that loads `dataset`
through `load_frame`:

* `<dataset>_expectations` (WARN): the GX 1.x suite of the dataset's effective rules run on the rows of the
  materialized partition read back from the warehouse (unpartitioned assets: the rows this run wrote,
  `ingested_at` >= run start); metadata: GX statistics, failed expectations with samples, quarantine count.
* `<dataset>_quarantine_fraction` (blocking, ERROR): quarantined / fetched of the materialization(s) of
  this run above `max_fraction` (default 5 %, run config) stops downstream assets.
* `<dataset>_unique_key` (blocking, ERROR): the natural key duplicated in the real table within the
  checked window (impossible under the primary key; it guards loads that bypass it and tables without one).

Partitioned checks report one result per daily partition, also in a single-run backfill of a range: each
day of the run's range is checked on its own rows and recorded with its partition key
(`dg.AssetCheckEvaluation(partition=...)`). Dagster plans one execution per partition of the run
(`ASSET_CHECK_EVALUATION_PLANNED` carries the run's partition subset) and an `AssetCheckResult` of a
range run has no partition, so the planned per-day executions would otherwise end "skipped" or
"execution failed" in the UI although the check passed.

The builder is shared; the checks sit next to their asset: each domain's `checks.py` calls `checks_of` for
its checked datasets (`pipelines/datasets.py`). They target asset keys (`dg.AssetKey`), so this module
imports no asset.
"""

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from psycopg2 import sql as pgsql

from market_warehouse.pipelines.datasets import Dataset
from market_warehouse.pipelines.partitions import DAILY
from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.models import TIMESERIES
from market_warehouse.resources.quality.jsonsafe import json_safe, records
from market_warehouse.resources.quality.split import coerce, key_columns, table_of
from market_warehouse.resources.sqlfiles import load_sql

DEFAULT_MAX_QUARANTINE_FRACTION = float(os.environ.get("MW_MAX_QUARANTINE_FRACTION", "0.05"))
MAX_CHECKED_ROWS = 1_000_000
SHOWN = 5


class QuarantineFractionConfig(dg.Config):
    max_fraction: float = DEFAULT_MAX_QUARANTINE_FRACTION


# --------------------------------------------------------------------------------------------------------
# Which rows a check looks at
# --------------------------------------------------------------------------------------------------------


def _run_start(context: dg.AssetCheckExecutionContext) -> datetime:
    stats = context.instance.get_run_stats(context.run.run_id)
    started = stats.start_time or stats.launch_time
    # The system clock, not resources.clock: the bound is compared with `ingested_at`, which the database
    # stamps with its own now(), and with Dagster's run start.
    return datetime.fromtimestamp(started, UTC) if started else datetime.now(UTC)


def _window(context: dg.AssetCheckExecutionContext, dataset: str, partition: str | None) -> tuple[str, dict]:
    """(column, bounds) of the checked rows: the partition's day, or what this run wrote (unpartitioned)."""
    if partition is not None:
        window = DAILY.time_window_for_partition_key(partition)
        return TIMESERIES[dataset].time_column, {"start": window.start, "end": window.end}
    return "ingested_at", {"start": _run_start(context), "end": datetime.max.replace(tzinfo=UTC)}


def _compose(name: str, dataset: str, column: str) -> pgsql.Composed:
    keys = key_columns(dataset)
    return pgsql.SQL(load_sql(name)).format(
        table=pgsql.Identifier(dataset),
        column=pgsql.Identifier(column),
        keys=pgsql.SQL(", ").join(pgsql.Identifier(k) for k in keys),
    )


def _query(engine: sa.Engine, stmt: pgsql.Composed, params: dict) -> pd.DataFrame:
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute(stmt.as_string(raw), params)
            columns = [d.name for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)


def _read_rows(engine: sa.Engine, dataset: str, column: str, bounds: dict) -> pd.DataFrame:
    frame = _query(
        engine, _compose("common/quality_check_rows", dataset, column), {**bounds, "limit": MAX_CHECKED_ROWS}
    )
    frame = frame.drop(columns=[c for c in frame.columns if c not in table_of(dataset).c])
    if frame.empty:
        return frame
    for name in frame.columns:
        if isinstance(table_of(dataset).c[name].type, sa.DateTime):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    typed, _, _ = coerce(dataset, frame)
    return typed


def _quarantined(engine: sa.Engine, dataset: str, run_id: str, partition: str | None) -> int:
    """Rows of `dataset` this run quarantined (of one partition when given: loads label rows by day)."""
    from market_warehouse.resources.quality.quarantine import count_quarantined

    with engine.connect() as conn:
        return count_quarantined(conn, dataset, run_id=run_id, partition_key=partition)


def _load_stats(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str | None
) -> list[dict]:
    """rows_fetched / rows_quarantined of this run's materializations of the asset (of the partition when
    given; the latest materialization otherwise)."""
    entries = context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    found = [
        e
        for e in entries
        if e.asset_materialization
        and e.asset_materialization.asset_key == asset_key
        and (partition is None or e.asset_materialization.partition == partition)
    ]
    if not found:
        latest = _latest_materialization(context, asset_key, partition)
        found = [latest.event_log_entry] if latest is not None else []
    stats = []
    for entry in found:
        meta = entry.asset_materialization.metadata
        fetched, quarantined = meta.get("rows_fetched"), meta.get("rows_quarantined")
        if fetched is None or quarantined is None:
            continue
        stats.append(
            {
                "partition": entry.asset_materialization.partition,
                "fetched": int(fetched.value),
                "quarantined": int(quarantined.value),
                "run_id": entry.run_id,
            }
        )
    return stats


def _latest_materialization(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str | None
) -> dg.EventLogRecord | None:
    """The latest materialization record of the asset (of one partition when given)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0] if records else None


# --------------------------------------------------------------------------------------------------------
# One result per partition
# --------------------------------------------------------------------------------------------------------

# (context, partition or None) -> the check's result for that partition (or for the run, unpartitioned)
Evaluate = Callable[[dg.AssetCheckExecutionContext, "str | None"], dg.AssetCheckResult]


def _target(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization of the partition the result is about (the UI ties a result to it)."""
    record = _latest_materialization(context, asset_key, partition)
    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def per_partition(
    context: dg.AssetCheckExecutionContext,
    asset_key: dg.AssetKey,
    spec: dg.AssetCheckSpec,
    evaluate: Evaluate,
    partitioned: bool,
) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output]:
    """The check's results: one evaluation per partition of the run (a range run included), each
    recorded with its partition key; one plain result for an unpartitioned check.

    A failed blocking ERROR evaluation still fails the step after all partitions are reported, so
    downstream assets do not run (Dagster raises on it as it does for an `AssetCheckResult`).
    """
    if not partitioned:
        yield evaluate(context, None)
        return
    for partition in context.partition_keys:
        result = evaluate(context, partition)
        yield dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=spec.name,
            passed=result.passed,
            metadata=result.metadata,
            severity=result.severity,
            description=result.description,
            blocking=spec.blocking,
            partition=partition,
            target_materialization_data=_target(context, asset_key, partition),
        )
    yield dg.Output(None)  # the check's output (an `AssetCheckResult` yields it implicitly)


# --------------------------------------------------------------------------------------------------------
# The factory
# --------------------------------------------------------------------------------------------------------


def quality_checks(
    asset_key: str | dg.AssetKey, dataset: str, *, partitioned: bool
) -> list[dg.AssetChecksDefinition]:
    """The three data-quality checks of the asset `asset_key`, which loads the table `dataset`."""
    key = asset_key if isinstance(asset_key, dg.AssetKey) else dg.AssetKey(asset_key)
    table_of(dataset)
    if not partitioned and "ingested_at" not in table_of(dataset).c:
        raise ValueError(f"{dataset} has no ingested_at: its checks need a partitioned asset")
    partitions_def = DAILY if partitioned else None
    with warnings.catch_warnings():
        # Partitioned asset checks are a Dagster "preview" feature; they give per-partition results.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build_checks(key, dataset, partitioned, partitions_def)


def _build_checks(
    key: dg.AssetKey, dataset: str, partitioned: bool, partitions_def: dg.PartitionsDefinition | None
) -> list[dg.AssetChecksDefinition]:
    def check(suffix: str, description: str, *, blocking: bool = False):
        """The decorator of one of the dataset's checks: `<dataset>_<suffix>` on the asset, per partition."""
        return dg.asset_check(
            asset=key,
            name=f"{dataset}_{suffix}",
            description=description,
            blocking=blocking,
            partitions_def=partitions_def,
        )

    def run(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, evaluate: Callable, *args: Any
    ) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output]:
        """The running check's results: `evaluate(context, partition, engine, *args)` per partition."""
        engine = warehouse.engine()
        (spec,) = context.check_specs
        return per_partition(
            context, key, spec, lambda ctx, partition: evaluate(ctx, partition, engine, *args), partitioned
        )

    def evaluate_expectations(
        context: dg.AssetCheckExecutionContext, partition: str | None, engine: sa.Engine
    ) -> dg.AssetCheckResult:
        from market_warehouse.resources.quality.expectations import validate
        from market_warehouse.resources.quality.rules import load_rules

        column, bounds = _window(context, dataset, partition)
        frame = _read_rows(engine, dataset, column, bounds)
        with engine.connect() as conn:
            rules = load_rules(conn, dataset)
        result = validate(dataset, frame, rules)
        quarantined = _quarantined(engine, dataset, context.run.run_id, partition)
        failed = result["failed"]
        metadata = {
            "rows_checked": len(frame),
            "rows_truncated": len(frame) >= MAX_CHECKED_ROWS,
            "window": f"{column} in [{json_safe(bounds['start'])}, {json_safe(bounds['end'])})",
            "statistics": dg.MetadataValue.json(result["statistics"]),
            "failed_expectations": dg.MetadataValue.json(failed),
            "failed_rules": ", ".join(f"{f['rule']} ({f['unexpected_count']})" for f in failed) or "none",
            "quarantined_this_run": quarantined,
            "gx_seconds": result["seconds"],
        }
        if failed:
            samples = [dict(rule=f["rule"], **row) for f in failed for row in f["sample"]][: SHOWN * 4]
            metadata["failing_rows_sample"] = dg.MetadataValue.json(samples)
        return dg.AssetCheckResult(
            passed=bool(result["success_all"]),
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"{result['statistics'].get('successful_expectations', 0)} of "
            f"{result['statistics'].get('evaluated_expectations', 0)} expectations met on {len(frame)} rows",
        )

    @check(
        "expectations", f"GX suite of the {dataset} rules on the stored rows of the materialization (WARN)."
    )
    def expectations(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator:
        yield from run(context, warehouse, evaluate_expectations)

    def evaluate_fraction(
        context: dg.AssetCheckExecutionContext, partition: str | None, engine: sa.Engine, max_fraction: float
    ) -> dg.AssetCheckResult:
        stats = _load_stats(context, key, partition)
        quarantined_run = _quarantined(engine, dataset, context.run.run_id, partition)
        if not stats:
            return dg.AssetCheckResult(
                passed=True,
                metadata={
                    "note": "no rows_fetched / rows_quarantined reported",
                    "quarantined_this_run": quarantined_run,
                },
            )
        worst = max(stats, key=lambda s: s["quarantined"] / s["fetched"] if s["fetched"] else 0.0)
        fraction = worst["quarantined"] / worst["fetched"] if worst["fetched"] else 0.0
        return dg.AssetCheckResult(
            passed=fraction <= max_fraction,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "fraction": dg.MetadataValue.float(round(fraction, 6)),
                "max_fraction": dg.MetadataValue.float(max_fraction),
                "rows_fetched": worst["fetched"],
                "rows_quarantined": worst["quarantined"],
                "quarantined_this_run": quarantined_run,
                "materializations": dg.MetadataValue.json(stats[:20]),
            },
            description=f"{fraction:.2%} of the fetched rows quarantined (max {max_fraction:.2%})",
        )

    @check(
        "quarantine_fraction",
        f"Blocks downstream when more than max_fraction of the {dataset} rows were quarantined.",
        blocking=True,
    )
    def quarantine_fraction(
        context: dg.AssetCheckExecutionContext, config: QuarantineFractionConfig, warehouse: WarehouseResource
    ) -> Iterator:
        yield from run(context, warehouse, evaluate_fraction, config.max_fraction)

    def evaluate_unique(
        context: dg.AssetCheckExecutionContext, partition: str | None, engine: sa.Engine
    ) -> dg.AssetCheckResult:
        column, bounds = _window(context, dataset, partition)
        dups = _query(engine, _compose("common/quality_check_duplicates", dataset, column), bounds)
        groups = int(dups["groups"].iloc[0]) if "groups" in dups and len(dups) else 0
        metadata = {
            "key": ", ".join(key_columns(dataset)),
            "duplicated_keys": groups,
            "window": f"{column} in [{json_safe(bounds['start'])}, {json_safe(bounds['end'])})",
        }
        if groups:
            metadata["sample"] = dg.MetadataValue.json(records(dups.drop(columns=["groups"]).head(SHOWN)))
        return dg.AssetCheckResult(
            passed=groups == 0, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata
        )

    @check(
        "unique_key",
        f"Blocks downstream when a natural key of {dataset} is stored more than once.",
        blocking=True,
    )
    def unique_key(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator:
        yield from run(context, warehouse, evaluate_unique)

    return [expectations, quarantine_fraction, unique_key]


def checks_of(datasets: Iterable[Dataset]) -> list[dg.AssetChecksDefinition]:
    """The three load checks of each dataset's asset (a domain's `checks.py` passes its checked datasets)."""
    return [check for d in datasets for check in quality_checks(d.asset, d.table, partitioned=d.partitioned)]
