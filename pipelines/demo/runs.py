"""The Dagster side of the demo: the project's instance, the definitions with the progress logger, the runs."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator

import dagster as dg

from market_warehouse.pipelines.demo.progress import Progress, quiet_run_config
from market_warehouse.pipelines.demo.report import DemoReport, Echo
from market_warehouse.pipelines.demo.staleness import source_keys, stale_downstream
from market_warehouse.pipelines.partitions import DAILY
from market_warehouse.resources.settings import Settings

# The runs select assets of Dagster's implicit job of every asset, which the code location has too: a
# job of the demo's own ("demo_graph") left every demo run linking to "Pipeline not found" in the UI.
ASSET_JOB = "__ASSET_JOB"

RANGE_START_TAG = "dagster/asset_partition_range_start"

RANGE_END_TAG = "dagster/asset_partition_range_end"


@contextlib.contextmanager
def project_instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    """The project's Dagster instance (PostgreSQL storage, as `market-warehouse ui` uses it)."""
    from market_warehouse.pipelines.cli.ui import dagster_environment

    env = dagster_environment(settings)
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME",)}
    os.environ.update({k: env[k] for k in saved})
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def demo_definitions(progress: dg.LoggerDefinition, universe: str | None) -> dg.Definitions:
    """The code location plus the progress logger (runs select assets of the implicit asset job)."""
    with warnings.catch_warnings():  # beta/preview notices of the definitions are not news to a user
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from market_warehouse.pipelines.definitions import defs as location
    from market_warehouse.resources.dagster_resources import ExchangeResource

    resources = dict(location.resources or {})
    if universe:
        resources["exchanges"] = ExchangeResource(universe_path=universe)
    return dg.Definitions(
        assets=location.assets,
        asset_checks=location.asset_checks,
        jobs=location.jobs,
        resources=resources,
        loggers={"demo_progress": progress, "console": dg.colored_console_logger},
    )


def execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    report: DemoReport,
    echo: Echo,
    ops: dict | None = None,
    **kw,
):
    started = time.perf_counter()
    run_config = {**quiet_run_config(), **({"ops": ops} if ops else {})}
    result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False, **kw)
    report.runs[result.run_id] = result.success
    state = "succeeded" if result.success else "FAILED"
    echo(f"  run {result.run_id[:8]} {state} in {time.perf_counter() - started:.1f}s")
    return result


def materialize_window(
    defs: dg.Definitions, instance: dg.DagsterInstance, report: DemoReport, echo: Echo, progress: Progress
) -> None:
    """Sources over the window in one run; then, in a second run, what they (or missing partitions) made
    stale. Two runs because the second one's selection depends on what the first one wrote."""
    job = defs.resolve_implicit_global_asset_job_def()  # named ASSET_JOB, as in the code location
    graph = defs.resolve_asset_graph()
    window = report.window
    partitions = DAILY.get_partition_keys_in_range(dg.PartitionKeyRange(*window))
    tags = {RANGE_START_TAG: window[0], RANGE_END_TAG: window[1]}
    echo(f"sources (landed files, exchanges) for {window[0]} .. {window[1]}, one run:")
    progress.run_written.clear()
    sources = execute(job, instance, report, echo, tags=tags, asset_selection=sorted(source_keys(graph)))
    if not sources.success:
        echo("  sources failed: derived assets not run (see the run in `market-warehouse ui`)")
        return
    wrote = sum(progress.run_written.values()) > 0
    selection = stale_downstream(instance, defs, partitions, sources_wrote=wrote)
    if not selection:
        echo("derived assets: up to date (no source row changed, every partition current): nothing to run")
        return
    echo(f"derived assets, aggregates and stats ({len(selection)} assets), one run:")
    execute(job, instance, report, echo, tags=tags, asset_selection=sorted(selection))
