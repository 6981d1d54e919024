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

import contextlib
import gzip
import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from pipelines.maintenance import POLICY_OPS
from pipelines.partitions import DAILY, partitions_at_clock
from pipelines.retries import root_error
from resources import clock
from resources.database import redact, warehouse_engine
from resources.models import Base
from resources.schema import upgrade
from resources.settings import Settings, load_settings

Echo = Callable[[str], None]

DEMO_FOLDER = "demo"  # under the landing folder: the demo's files never mix with a user's
AGGREGATE_TABLES = ("ohlcv_1h", "ohlcv_1d")
GRAPH_JOB = "demo_graph"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# The demo runs 5 minutes into the day after its window: every candle of the last day is closed and past
# the default `settle` (2m), so the coverage ledger records the window as answered, and the day after has
# barely begun (its few minutes are not in the window and not pulled).
DEMO_CLOCK_AFTER_END = timedelta(days=1, minutes=5)


@dataclass
class DemoOptions:
    days: int = 3  # complete UTC days of the window
    history_days: int = 7  # landed files cover this many days before the window
    universe: str | None = None  # universe YAML (default: MW_UNIVERSE, else the shipped synthetic one)
    end: date | None = None  # the window's last UTC day (default: yesterday by the clock)
    quiet: bool = False  # no per-step progress lines


@dataclass
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    severity: str
    description: str


@dataclass
class StepFailure:
    """A failed step and its root error (type, message, where raised), not Dagster's wrapper message."""

    step: str
    error: str  # e.g. "IndexError: index -1 is out of bounds … (at resources/exchanges/synthetic.py:88)"


@dataclass
class DemoReport:
    """What the demo did: the data it wrote, what it rejected, what the checks said."""

    window: tuple[str, str]
    runs: dict[str, bool] = field(default_factory=dict)  # run id -> success
    files_written: int = 0
    files_unchanged: int = 0
    rows_written: Counter = field(default_factory=Counter)  # asset -> rows inserted + updated this run
    checks: list[CheckOutcome] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    quarantine: list[tuple[str, str, str, int]] = field(default_factory=list)  # table, rule, source, rows
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    capabilities: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return all(self.runs.values())

    @property
    def total_written(self) -> int:
        return sum(self.rows_written.values())


# --------------------------------------------------------------------------------------------------------
# The window and the sample files
# --------------------------------------------------------------------------------------------------------


def demo_window(days: int, end: date | None = None) -> tuple[str, str]:
    """First and last partition key of the `days` UTC days ending with `end` (default: yesterday by the
    clock, the last complete day)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = end or clock.today() - timedelta(days=1)
    first = end - timedelta(days=days - 1)
    if first < DAILY.start.date():
        raise ValueError(f"the window starts {first}, before the first partition {DAILY.start.date()}")
    return first.isoformat(), end.isoformat()


def demo_instant(window_end: str) -> datetime:
    """The instant the demo runs at: `DEMO_CLOCK_AFTER_END` after the start of the window's last day."""
    return datetime.fromisoformat(window_end).replace(tzinfo=UTC) + DEMO_CLOCK_AFTER_END


def _candles(exchange, symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> list[list]:
    """Closed candles of the synthetic exchange in [start, end): exactly what a pull would store."""
    rows: list[list] = []
    since = int(start.timestamp() * 1000)
    end_ms = int(end.timestamp() * 1000)
    while since < end_ms:
        page = [r for r in exchange.fetch_ohlcv(symbol, interval, since=since, limit=1000) if r[0] < end_ms]
        if not page:
            break
        rows.extend(page)
        since = int(page[-1][0]) + 1
    return rows


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _binance_klines(rows: list[list], interval_ms: int) -> bytes:
    """Binance's 12-field klines: open time, OHLCV as strings, close time, quote volume, trades, ..."""
    klines = [
        [
            int(r[0]),
            *(f"{v:.8f}" for v in r[1:6]),
            int(r[0]) + interval_ms - 1,
            f"{r[6] if len(r) > 6 and r[6] is not None else 0:.8f}",
            int(r[7]) if len(r) > 7 and r[7] is not None else 0,
            "0",
            "0",
            "0",
        ]
        for r in rows
    ]
    return json.dumps(klines, separators=(",", ":")).encode()


def _records_with_bad_rows(rows: list[list]) -> bytes:
    """Records with ISO times; three rows broken the ways real exports break (see the summary)."""
    records = [
        {"timestamp": _iso(r[0]), "open": r[1], "high": r[2], "low": r[3], "close": r[4], "volume": r[5]}
        for r in rows
    ]
    if len(records) > 30:
        records[10]["open"] = "n/a"  # unreadable number: quarantined by the parser
        records[20]["high"] = records[20]["low"] * 0.99  # high below low: the ohlcv rules quarantine it
        records[30]["volume"] = -abs(records[30]["volume"]) - 1  # negative volume
    return json.dumps(records, indent=1).encode()


def _split_orient(rows: list[list]) -> bytes:
    frame = pd.DataFrame(
        [r[:6] for r in rows], columns=["time", "open", "high", "low", "close", "volume"]
    ).astype({"time": "int64"})
    return frame.to_json(orient="split", index=False).encode()


def _gzip_ndjson(rows: list[list]) -> bytes:
    lines = "\n".join(
        json.dumps({"t": int(r[0]), "o": r[1], "h": r[2], "l": r[3], "c": r[4], "v": r[5]}) for r in rows
    )
    return gzip.compress((lines + "\n").encode(), mtime=0)  # mtime=0: same rows, same bytes


def sample_files(universe_path: str | None, window_start: str, history_days: int) -> dict[str, bytes]:
    """Relative path -> content of the demo's landed files (deterministic for a given window)."""
    from resources.exchanges.client import build_exchange
    from resources.exchanges.universe import load_universe

    universe = load_universe(universe_path)
    synthetic = [c for c in universe.exchanges if c.is_synthetic]
    if not synthetic:
        return {}
    config = synthetic[0]
    exchange = build_exchange(config)
    end = pd.Timestamp(window_start, tz="UTC")
    week, day = end - pd.Timedelta(days=history_days), end - pd.Timedelta(days=1)
    symbols = list(config.symbols)
    first, second = symbols[0], symbols[1 % len(symbols)]
    base = f"{DEMO_FOLDER}/exchange={config.name}"
    slug = {s: s.replace("/", "_").replace(":", "_") for s in symbols}
    hour_ms = 3_600_000
    files: dict[str, bytes] = {}
    if "1h" in config.intervals:
        files[f"{base}/{slug[first]}-1h-klines.json"] = _binance_klines(
            _candles(exchange, first, "1h", week, end), hour_ms
        )
        if second != first:
            files[f"{base}/{slug[second]}-1h-records.json"] = _records_with_bad_rows(
                _candles(exchange, second, "1h", week, end)
            )
    if "1m" in config.intervals:
        files[f"{base}/{slug[first]}-1m.ndjson.gz"] = _gzip_ndjson(_candles(exchange, first, "1m", day, end))
        if second != first:
            files[f"{base}/{slug[second]}-1m-split.json"] = _split_orient(
                _candles(exchange, second, "1m", day, end)
            )
    # A download cut short: not JSON at all. It fails alone, is reported, and is retried on every run.
    files[f"{base}/{slug[first]}-4h-truncated.json"] = b'[[1704067200000, "42000.1", "42100", "41'
    return files


def write_sample_files(folder: Path, files: dict[str, bytes]) -> tuple[int, int]:
    """Write the files whose bytes differ (atomically, by rename); (written, unchanged)."""
    written = unchanged = 0
    for relative, content in files.items():
        path = folder / relative
        if path.is_file() and path.read_bytes() == content:
            unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")  # hidden: the loader and sensor ignore it
        partial.write_bytes(content)
        partial.replace(path)
        written += 1
    return written, unchanged


# --------------------------------------------------------------------------------------------------------
# Progress: a Dagster logger that turns events into one readable line each
# --------------------------------------------------------------------------------------------------------


def _meta_value(metadata, name: str):
    value = metadata.get(name)
    return getattr(value, "value", value)


def _written(metadata) -> int | None:
    """Rows this materialization inserted or updated, from whichever convention the asset reports."""
    if "rows_written" in metadata:
        return int(_meta_value(metadata, "rows_written") or 0)
    parts = [_meta_value(metadata, k) for k in ("rows_inserted", "rows_updated")]
    if any(p is not None for p in parts):
        return sum(int(p or 0) for p in parts)
    return None


class _Progress(logging.Handler):
    """Receives every Dagster event of the run (they are log records) and echoes one line per step."""

    def __init__(self, echo: Echo, report: DemoReport, quiet: bool):
        super().__init__(logging.DEBUG)
        self.echo, self.report, self.quiet = echo, report, quiet
        self.started: dict[str, float] = {}
        self.step_written: dict[str, dict[str, int]] = {}
        self.step_checks: dict[str, list[CheckOutcome]] = {}
        self.run_written: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        try:
            if event is not None:
                self._handle(event)
            elif record.levelno >= logging.ERROR:
                step = meta.get("step_key") or ""
                self._say(f"  error {step}: {meta.get('orig_message') or record.getMessage()}")
        except Exception:  # progress must never break a run
            logging.getLogger(__name__).debug("progress line failed", exc_info=True)

    def _say(self, line: str) -> None:
        if not self.quiet:
            self.echo(line)

    def _handle(self, event: dg.DagsterEvent) -> None:
        kind, step = event.event_type, event.step_key or ""
        if kind == dg.DagsterEventType.STEP_START:
            self.started[step] = time.perf_counter()
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            name = mat.asset_key.to_user_string()
            written = _written(mat.metadata)
            # A range run reports one materialization per partition with the step's totals: count once.
            seen = self.step_written.setdefault(step, {})
            if written is not None and name not in seen:
                seen[name] = written
                self.report.rows_written[name] += written
                self.run_written[name] += written
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            failed_rules = _meta_value(evaluation.metadata, "failed_rules")
            description = evaluation.description or ""
            if not evaluation.passed and failed_rules and failed_rules != "none":
                description = f"{description}; failing: {failed_rules}"
            outcome = CheckOutcome(
                asset=evaluation.asset_key.to_user_string(),
                name=evaluation.check_name,
                passed=bool(evaluation.passed),
                severity=getattr(evaluation.severity, "value", str(evaluation.severity)),
                description=description,
            )
            self.report.checks.append(outcome)
            self.step_checks.setdefault(step, []).append(outcome)
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self._say(self._step_line(step))
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            message = str(root_error(error)) if error else "failed"
            self.report.failures.append(StepFailure(step, message))
            self._say(f"  FAIL  {step}: {message}")
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            data = event.event_specific_data
            wait = f" in {data.seconds_to_wait:.1f}s" if data.seconds_to_wait is not None else ""
            cause = f": {root_error(data.error)}" if data.error else ""
            self._say(f"  retry {step}{wait}{cause}")
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            self._say(f"  skip  {step} (an upstream step or a blocking check failed)")

    def _step_line(self, step: str) -> str:
        seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
        checks = self.step_checks.get(step)
        if checks:
            return "\n".join(
                f"  check {'ok  ' if c.passed else c.severity.lower():<5} {c.asset}: {c.name}"
                + ("" if c.passed else f" — {c.description}")
                for c in checks
            )
        written = self.step_written.get(step, {})
        detail = f"  {sum(written.values()):>9,} rows written" if written else ""
        return f"  done  {step:<34} {seconds:6.1f}s{detail}"


def _progress_logger(handler: _Progress) -> dg.LoggerDefinition:
    @dg.logger(description="One line per step and check of the demo runs.")
    def demo_progress(_init_context) -> logging.Logger:
        log = logging.getLogger("market_warehouse.demo.progress")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [handler]
        return log

    return demo_progress


# --------------------------------------------------------------------------------------------------------
# The Dagster side: instance, definitions, runs
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def project_instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    """The project's Dagster instance (PostgreSQL storage, as `market-warehouse ui` uses it)."""
    from pipelines.ui import dagster_environment

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
    """The code location plus a job of every asset (run on subsets) and the progress logger."""
    with warnings.catch_warnings():  # beta/preview notices of the definitions are not news to a user
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from pipelines.definitions import defs as location
    from resources.dagster_resources import ExchangeResource

    resources = dict(location.resources or {})
    if universe:
        resources["exchanges"] = ExchangeResource(universe_path=universe)
    return dg.Definitions(
        assets=location.assets,
        asset_checks=location.asset_checks,
        jobs=[*(location.jobs or []), dg.define_asset_job(GRAPH_JOB, selection=dg.AssetSelection.all())],
        resources=resources,
        loggers={"demo_progress": progress, "console": dg.colored_console_logger},
    )


def _quiet_run_config() -> dict:
    # Dagster's console logger only for critical messages; our logger turns events into progress lines.
    return {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}, "demo_progress": {}}}


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    report: DemoReport,
    echo: Echo,
    ops: dict | None = None,
    **kw,
):
    started = time.perf_counter()
    run_config = {**_quiet_run_config(), **({"ops": ops} if ops else {})}
    result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False, **kw)
    report.runs[result.run_id] = result.success
    state = "succeeded" if result.success else "FAILED"
    echo(f"  run {result.run_id[:8]} {state} in {time.perf_counter() - started:.1f}s")
    return result


def source_keys(graph) -> set[dg.AssetKey]:
    """The assets that read the outside world (landed files, exchanges): always asked again."""
    from pipelines.market_data import MARKET_DATA_ASSETS

    return {dg.AssetKey(name) for name in ["historical_files", *MARKET_DATA_ASSETS]} & set(
        graph.get_all_asset_keys()
    )


def _current(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, code_version) -> bool:
    """Materialized (this partition) by the current code version."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return False
    tags = records[0].asset_materialization.tags or {}
    return tags.get("dagster/code_version") == code_version


def stale_downstream(
    instance: dg.DagsterInstance, defs: dg.Definitions, partitions: list[str], *, sources_wrote: bool
) -> set[dg.AssetKey]:
    """Assets below the sources to materialize: all of them when the sources wrote rows, else those with a
    window partition never materialized by the current code version, and everything downstream of them.

    Derived assets are functions of the warehouse's rows, their code and their settings: when no source
    row changed and every partition exists at the current code version, running them again would only
    recompute the same rows (which the loads would then skip).
    """
    graph = defs.resolve_asset_graph()
    below = set(graph.get_all_asset_keys()) - source_keys(graph)
    if sources_wrote:
        return below
    stale = set()
    for key in below:
        node = graph.get(key)
        wanted = partitions if node.is_partitioned else [None]
        if not all(_current(instance, key, p, node.code_version) for p in wanted):
            stale.add(key)
    if not stale:
        return set()
    selected = dg.AssetSelection.assets(*stale).downstream().resolve(graph) & below
    # A multi-asset (ohlcv_1h + ohlcv_1d) runs as a whole.
    return {k for key in selected for k in graph.get(key).execution_set_asset_keys} & below


def _materialize_window(
    defs: dg.Definitions, instance: dg.DagsterInstance, report: DemoReport, echo: Echo, progress: _Progress
) -> None:
    """Sources over the window in one run; then, in a second run, what they (or missing partitions) made
    stale. Two runs because the second one's selection depends on what the first one wrote."""
    job = defs.resolve_job_def(GRAPH_JOB)
    graph = defs.resolve_asset_graph()
    window = report.window
    partitions = DAILY.get_partition_keys_in_range(dg.PartitionKeyRange(*window))
    tags = {RANGE_START_TAG: window[0], RANGE_END_TAG: window[1]}
    echo(f"sources (landed files, exchanges) for {window[0]} .. {window[1]}, one run:")
    progress.run_written.clear()
    sources = _execute(job, instance, report, echo, tags=tags, asset_selection=sorted(source_keys(graph)))
    if not sources.success:
        echo("  sources failed: derived assets not run (see the run in `market-warehouse ui`)")
        return
    wrote = sum(progress.run_written.values()) > 0
    selection = stale_downstream(instance, defs, partitions, sources_wrote=wrote)
    if not selection:
        echo("derived assets: up to date (no source row changed, every partition current): nothing to run")
        return
    echo(f"derived assets, aggregates and stats ({len(selection)} assets), one run:")
    _execute(job, instance, report, echo, tags=tags, asset_selection=sorted(selection))


# --------------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------------


def _table_rows(conn: sa.Connection) -> dict[str, int]:
    """Exact row counts (the demo's tables are small), including the 1h/1d aggregates."""
    counts = {}
    tables = [Base.metadata.tables[name] for name in sorted(Base.metadata.tables)]
    tables += [sa.table(name) for name in AGGREGATE_TABLES]
    for table in tables:
        with conn.begin_nested():
            try:
                counts[table.name] = int(conn.scalar(sa.select(sa.func.count()).select_from(table)))
            except sa.exc.ProgrammingError:
                continue  # an aggregate this backend does not have
    return counts


def _quarantine_summary(conn: sa.Connection) -> list[tuple[str, str, str, int]]:
    q = Base.metadata.tables["quarantine"]
    source = sa.func.coalesce(q.c.source, "")
    rows = conn.execute(
        sa.select(q.c.table_name, q.c.rule, source, sa.func.count())
        .where(q.c.released_at.is_(None))
        .group_by(q.c.table_name, q.c.rule, source)
        .order_by(q.c.table_name, sa.func.count().desc())
    )
    return [(t, r, s, int(n)) for t, r, s, n in rows]


def _failed_files(conn: sa.Connection) -> list[tuple[str, str]]:
    from resources.files import ledger

    return [(e.path, e.error or "") for e in ledger.latest_entries(conn).values() if e.status == "failed"]


def collect(engine: sa.Engine, report: DemoReport) -> None:
    from resources.backend import detect

    with engine.connect() as conn:
        report.capabilities = detect(conn).as_dict()
        report.table_rows = _table_rows(conn)
        report.quarantine = _quarantine_summary(conn)
        report.failed_files = _failed_files(conn)


def print_summary(report: DemoReport, echo: Echo) -> None:
    echo("")
    echo(f"Summary — window {report.window[0]} .. {report.window[1]} (UTC), {report.seconds:.0f}s")
    echo("")
    echo(f"  {'table':<24} {'rows':>10}")
    for name, count in sorted(report.table_rows.items()):
        if count:
            echo(f"  {name:<24} {count:>10,}")
    empty = sorted(n for n, c in report.table_rows.items() if not c)
    if empty:
        echo(f"  (empty: {', '.join(empty)})")
    echo("")
    if report.quarantine:
        echo("  quarantined rows (unreleased), by rule:")
        for table, rule, source, count in report.quarantine:
            echo(f"    {count:>5}  {table}.{rule:<22} {source}")
        echo("    -> market-warehouse quarantine list / release")
    else:
        echo("  quarantined rows: none")
    for path, error in report.failed_files:
        echo(f"  failed file: {error or path}")
    for failure in report.failures:
        echo(f"  failed step: {failure.step}: {failure.error}")
    echo("")
    passed = sum(c.passed for c in report.checks)
    echo(f"  asset checks: {passed} passed, {len(report.checks) - passed} failed")
    for check in report.checks:
        if not check.passed:
            echo(f"    FAILED ({check.severity}) {check.asset}: {check.name} — {check.description}")
    echo("")
    caps = report.capabilities
    flags = ("hypertables", "native_partitions", "compression", "continuous_aggregates")
    echo(
        f"  backend: {caps.get('backend')} (PostgreSQL {caps.get('server_version')}); "
        + ", ".join(f"{f}={'yes' if caps.get(f) else 'no'}" for f in flags)
    )
    echo(f"  rows written by this run: {report.total_written:,} (a re-run writes 0)")
    echo("")
    echo("  next: market-warehouse ui       the runs, asset graph, checks and plots in the Dagster UI")
    echo("        market-warehouse db info  every table: kind, rows, size, chunks/partitions, time range")


# --------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------


def run_demo(options: DemoOptions | None = None, echo: Echo = print) -> DemoReport:
    """Migrate, land sample files, materialize the graph for the window, run maintenance, summarize; all
    under the clock pinned just after the window (see the module docstring)."""
    options = options or DemoOptions()
    window = demo_window(options.days, options.end)
    with clock.frozen(demo_instant(window[1])) as instant, partitions_at_clock():
        return _run_at(options, window, instant, echo)


def _run_at(options: DemoOptions, window: tuple[str, str], instant: datetime, echo: Echo) -> DemoReport:
    started = time.perf_counter()
    settings = load_settings()
    report = DemoReport(window=window)
    engine = warehouse_engine(settings)
    try:
        echo(
            f"clock:     pinned at {instant:%Y-%m-%d %H:%M} UTC, after the window {window[0]} .. {window[1]}"
        )
        echo(f"warehouse: {redact(engine.url)}")
        upgrade(engine)
        files = sample_files(options.universe, window[0], options.history_days)
        report.files_written, report.files_unchanged = write_sample_files(settings.landing_dir, files)
        echo(
            f"landing:   {settings.landing_dir / DEMO_FOLDER} — {report.files_written} sample files written, "
            f"{report.files_unchanged} unchanged"
        )
        progress = _Progress(echo, report, options.quiet)
        defs = demo_definitions(_progress_logger(progress), options.universe)
        with project_instance(settings) as instance:
            _materialize_window(defs, instance, report, echo, progress)
            echo("nightly maintenance (partitions, aggregates, compression, retention, stats):")
            policy = {"config": {"universe": options.universe}}
            ops = {op: policy for op in POLICY_OPS} if options.universe else None
            _execute(defs.resolve_job_def("nightly_maintenance"), instance, report, echo, ops=ops)
        collect(engine, report)
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    print_summary(report, echo)
    return report
