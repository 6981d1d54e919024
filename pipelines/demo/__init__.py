"""`market-warehouse demo`: the whole graph on the synthetic exchange, offline, with a summary.

What it does, in order:

1. migrates the warehouse (the embedded PostgreSQL unless `DATABASE_URL` is set);
2. writes sample historical files into the landing folder (`$MW_HOME/landing/demo/`): the week before the
   demo window, from the same deterministic synthetic exchange the pulls use, in four layouts (Binance
   klines arrays, records with ISO times, pandas `split` orient, gzip NDJSON), plus one truncated file and
   a few bad rows so that the summary shows what failure and quarantine look like;
3. materializes the graph for `days` complete UTC days ending with `end` (`--end`, default yesterday):
   the sources (landed files and every market-data asset, with their checks) as ONE run over the
   partition range (the assets' single-run backfill policy), then the derived assets, aggregates and
   stats as a second run over the same range, then the nightly maintenance job. Two runs, not one, because the second one's selection depends on what
   the first one wrote (see `stale_downstream`);
4. prints a line per step and check while it runs (a Dagster logger turning events into lines; Dagster's
   own console logger is silenced), then a summary: rows per table, quarantined rows by rule, failed
   files, asset check results, backend capabilities, where to look next.

The daily partitions the UI shows start where the demo's window starts (recorded in `$MW_HOME` for the
universe it ran with, `pipelines.history`), unless `MW_HISTORY_START` or the universe's `history_start`
says otherwise: the demo's days are then a filled bar, not 3 of ~330 days, and a window before the
default start is not refused. The command line records it before the code location is imported.

The whole demo runs under a pinned clock (`resources.clock.frozen`, so `MW_NOW` too): the instant
`DEMO_CLOCK_AFTER_END` after the start of `end`, i.e. `end` + 1 day 00:05 UTC. Every "now" (the sample
files, the synthetic exchanges, which candles are closed and settled, the data-quality rules, retention)
is that instant, and Dagster's partitions end there, so `demo --end 2026-11-29` writes the same rows
whatever day it is run on, and any window (weekends, holidays, DST changes) can be replayed.

The runs go to the project's Dagster instance (run and event storage in the `dagster` database of the
same server, as `market-warehouse ui` uses), so the UI shows the demo's runs, materializations, check
results and plots afterwards, and the lineage rows point at runs that exist.

Re-running is fast and writes no data: files are rewritten only when their bytes differ (the ingest
ledger skips them), the coverage ledger skips exchange ranges already answered, every upsert compares
before writing, and the derived assets are not run when no source row changed and every partition is
current. Only bookkeeping moves: the Dagster runs, and the retried ledger entry of the deliberately broken
file in `ingest_files`.
"""

from __future__ import annotations

import time
from datetime import date, datetime

from market_warehouse.pipelines.defs.maintenance import POLICY_OPS
from market_warehouse.pipelines.demo.printing import print_summary
from market_warehouse.pipelines.demo.progress import Progress, progress_logger, quiet_run_config
from market_warehouse.pipelines.demo.report import (
    AGGREGATE_TABLES,
    DEMO_FOLDER,
    CheckOutcome,
    DemoOptions,
    DemoReport,
    Echo,
    StepFailure,
)
from market_warehouse.pipelines.demo.runs import (
    demo_definitions,
    execute,
    materialize_window,
    project_instance,
)
from market_warehouse.pipelines.demo.samples import sample_files, write_sample_files
from market_warehouse.pipelines.demo.staleness import source_keys, stale_downstream
from market_warehouse.pipelines.demo.summary import collect
from market_warehouse.pipelines.demo.window import DEMO_CLOCK_AFTER_END, demo_instant, demo_window
from market_warehouse.pipelines.history import demo_window_days, record_demo_history_start
from market_warehouse.pipelines.partitions import partitions_at_clock
from market_warehouse.resources import clock
from market_warehouse.resources.database import redact, warehouse_engine
from market_warehouse.resources.schema import upgrade
from market_warehouse.resources.settings import load_settings


def run_demo(options: DemoOptions | None = None, echo: Echo = print) -> DemoReport:
    """Migrate, land sample files, materialize the graph for the window, run maintenance, summarize; all
    under the clock pinned just after the window (see the module docstring)."""
    options = options or DemoOptions()
    history = record_demo_history_start(options.universe, demo_window_days(options.days, options.end)[0])
    window = demo_window(options.days, options.end)
    with clock.frozen(demo_instant(window[1])) as instant, partitions_at_clock():
        return _run_at(options, window, instant, history, echo)


def _run_at(
    options: DemoOptions, window: tuple[str, str], instant: datetime, history: tuple[date, str], echo: Echo
) -> DemoReport:
    started = time.perf_counter()
    settings = load_settings()
    report = DemoReport(window=window)
    engine = warehouse_engine(settings)
    try:
        echo(
            f"clock:     pinned at {instant:%Y-%m-%d %H:%M} UTC, after the window {window[0]} .. {window[1]}"
        )
        echo(f"history:   the daily partitions (`market-warehouse ui`) start {history[0]}: {history[1]}")
        echo(f"warehouse: {redact(engine.url)}")
        upgrade(engine)
        files = sample_files(options.universe, window[0], options.history_days)
        report.files_written, report.files_unchanged = write_sample_files(settings.landing_dir, files)
        echo(
            f"landing:   {settings.landing_dir / DEMO_FOLDER} — {report.files_written} sample files written, "
            f"{report.files_unchanged} unchanged"
        )
        progress = Progress(echo, report, options.quiet)
        defs = demo_definitions(progress_logger(progress), options.universe)
        with project_instance(settings) as instance:
            materialize_window(defs, instance, report, echo, progress)
            echo("nightly maintenance (partitions, aggregates, compression, retention, stats):")
            policy = {"config": {"universe": options.universe}}
            ops = {op: policy for op in POLICY_OPS} if options.universe else None
            execute(defs.resolve_job_def("nightly_maintenance"), instance, report, echo, ops=ops)
        collect(engine, report)
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    print_summary(report, echo)
    return report


__all__ = [
    "AGGREGATE_TABLES",
    "DEMO_CLOCK_AFTER_END",
    "DEMO_FOLDER",
    "CheckOutcome",
    "DemoOptions",
    "DemoReport",
    "Progress",
    "StepFailure",
    "collect",
    "demo_definitions",
    "demo_instant",
    "demo_window",
    "print_summary",
    "progress_logger",
    "project_instance",
    "quiet_run_config",
    "run_demo",
    "sample_files",
    "source_keys",
    "stale_downstream",
    "write_sample_files",
]
