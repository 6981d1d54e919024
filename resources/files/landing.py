"""Load every file of a landing folder into its dataset (`ohlcv`, `market_trades`, `funding_rates`: told
by the file's known layout or its columns, `resources.files.layouts.read_file`), each file on its own,
batch by batch.

Files are JSON, CSV, Parquet or Feather, plain, gzipped or zipped (`resources.files.layouts.read_file`
tells them apart and reads them in batches of `batch_rows`, so a file larger than memory loads). One bad
file never stops the others: it is recorded in the ledger as failed with a reason naming the file
(and the row or field when that is the problem) and left in place for someone to fix. Rows that cannot be
read are quarantined with their reason (`quarantine.source` = `file:<path>`); rows that can are validated,
quarantined or upserted by `resources.warehouse.load.load_frame`, one batch at a time. Per file and in
total: fetched = inserted + updated + unchanged + quarantined; a file failing in a later batch keeps (and
counts) the batches stored before, and its error says so.

Database connection failures are not a property of a file: they propagate and end the run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.files import LandingFileError, ledger
from market_warehouse.resources.files.checksums import checksum_problem, sidecar
from market_warehouse.resources.files.layouts import ParsedFile, read_file
from market_warehouse.resources.files.readers.containers import SIDECAR_SUFFIXES
from market_warehouse.resources.files.symbols import SymbolError, instrument_fields
from market_warehouse.resources.quality.quarantine import write_quarantine
from market_warehouse.resources.quality.split import SplitResult, StructuralError
from market_warehouse.resources.warehouse.load import LoadResult, load_frame
from market_warehouse.resources.warehouse.ops.instruments import get_instruments, upsert_instruments

DATASET = "ohlcv"  # the dataset of files that say nothing else (candles)
BATCHES_PER_LOAD = 8  # a file's batches handed to one load_frame call (see _Chunk)
# Names of files still being written or left by tools: not landed data.
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock")
_INFRASTRUCTURE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)

log = logging.getLogger(__name__)


@dataclass
class FileReport:
    """What happened to one file in one run."""

    path: str  # relative to the landing folder
    status: str  # loaded, partial (some rows quarantined), empty, failed, skipped (unchanged since loaded)
    size_bytes: int = 0
    sha256: str | None = None
    layout: str | None = None
    time_unit: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    interval: str | None = None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    min_time: datetime | None = None
    max_time: datetime | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dataset: str | None = None  # ohlcv, market_trades or funding_rates
    archive: str | None = None  # the known layout of the path, e.g. 'binance-vision:klines'
    price: str | None = None  # the candles' price kind, when the layout tells it

    @property
    def balanced(self) -> bool:
        return self.fetched == self.inserted + self.updated + self.unchanged + self.quarantined

    @property
    def read_as(self) -> str:
        """The known archive layout, then what the readers found: 'binance-vision:klines:zip:csv:header'."""
        return ":".join(v for v in (self.archive, self.layout) if v)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["min_time"] = self.min_time.isoformat() if self.min_time else None
        out["max_time"] = self.max_time.isoformat() if self.max_time else None
        return out


@dataclass
class FolderReport:
    folder: str
    files: list[FileReport] = field(default_factory=list)

    def _count(self, *statuses: str) -> int:
        return sum(1 for f in self.files if f.status in statuses)

    @property
    def seen(self) -> int:
        return len(self.files)

    @property
    def loaded(self) -> int:
        """Files loaded this run, with or without quarantined rows."""
        return self._count("loaded", "partial")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def empty(self) -> int:
        return self._count("empty")

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def fetched(self) -> int:
        return self.total("fetched")

    @property
    def inserted(self) -> int:
        return self.total("inserted")

    @property
    def updated(self) -> int:
        return self.total("updated")

    @property
    def unchanged(self) -> int:
        return self.total("unchanged")

    @property
    def quarantined(self) -> int:
        return self.total("quarantined")

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        total: Counter = Counter()
        for report in self.files:
            total.update(report.quarantine_reasons)
        return dict(sorted(total.items()))

    @property
    def min_time(self) -> datetime | None:
        times = [f.min_time for f in self.files if f.min_time is not None]
        return min(times) if times else None

    @property
    def max_time(self) -> datetime | None:
        times = [f.max_time for f in self.files if f.max_time is not None]
        return max(times) if times else None

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)

    @property
    def failures(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]


def landed_files(folder: Path) -> list[Path]:
    """Regular files under `folder`, sorted, whatever their format (the readers tell it); hidden files,
    partial downloads and checksum sidecars are not landed data.

    Writers should land a file under a temporary or hidden name and rename it when complete.
    """
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.name.lower().endswith(_IGNORED_SUFFIXES + SIDECAR_SUFFIXES) or not path.is_file():
            continue
        found.append(path)
    return sorted(found)


class LoadObserver(Protocol):
    """Follows a folder load file by file and batch by batch (the `load` command's progress bars)."""

    def started(self, relative: str, size_bytes: int) -> None: ...

    def batch(self, report: FileReport, rows: int) -> None: ...

    def done(self, report: FileReport) -> None: ...


def load_landing_folder(
    engine: sa.Engine | None,
    folder: Path | str,
    *,
    run_id: str | None = None,
    default_timezone: str | None = None,
    batch_rows: int = 50_000,
    now: datetime | None = None,
    logger: Any = None,
    paths: list[Path] | None = None,
    observer: LoadObserver | None = None,
    dry_run: bool = False,
) -> FolderReport:
    """Load every landed file of `folder` (or only `paths`, files under it) not already loaded in its
    current version.

    `default_timezone` is the zone of naive ISO times in files that declare none (else they fail);
    `now` is the reference for "no candle still open" (default: the wall clock); `logger` takes any object
    with info/warning methods (the Dagster context's log). `dry_run` reads every file (status 'dry-run'
    or 'failed') and writes nothing, not even the ledger: `engine` may then be None.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder {folder} does not exist or is not a folder")
    say = logger or log
    report = FolderReport(folder=str(folder))
    paths = landed_files(folder) if paths is None else paths
    relatives = [p.relative_to(folder).as_posix() for p in paths]
    latest: dict[str, ledger.LedgerEntry] = {}
    if not dry_run:
        with engine.connect() as conn:
            latest = ledger.latest_entries(conn, relatives)
    for path, relative in zip(paths, relatives, strict=True):
        if observer is not None:
            observer.started(relative, path.stat().st_size)
        on_batch = observer.batch if observer is not None else None
        if dry_run:
            file_report = preview_file(
                folder, path, default_timezone=default_timezone, batch_rows=batch_rows, on_batch=on_batch
            )
        else:
            file_report = load_file(
                engine,
                folder,
                path,
                latest=latest.get(relative),
                run_id=run_id,
                default_timezone=default_timezone,
                batch_rows=batch_rows,
                now=now,
                on_batch=on_batch,
            )
        report.files.append(file_report)
        if observer is not None:
            observer.done(file_report)
        _log_file(say, file_report)
    return report


def preview_file(
    folder: Path,
    path: Path,
    *,
    default_timezone: str | None = None,
    batch_rows: int = 50_000,
    on_batch: Callable[[FileReport, int], None] | None = None,
) -> FileReport:
    """What `load_file` would read from one file, writing nothing: dataset, layout, instrument, price kind,
    interval, rows (`fetched`; unreadable ones in `quarantined`) and time range; 'failed' with the reason
    when the file would fail (its checksum included)."""
    started = time.perf_counter()
    relative = path.relative_to(folder).as_posix()
    report = FileReport(relative, "dry-run", size_bytes=path.stat().st_size)
    if sidecar(path) is not None:
        report.sha256 = ledger.fingerprint(path).sha256
        problem = checksum_problem(path, report.sha256)
        if problem is not None:
            return _failed(report, problem, started)
    progress = _Progress(report)
    batches = read_file(path, relative_to=folder, default_timezone=default_timezone, batch_rows=batch_rows)
    try:
        with contextlib.closing(batches):
            while (parsed := _next_batch(batches, relative)) is not None:
                progress.describe(parsed)
                if not parsed.empty:
                    progress.count([parsed], parsed.frame, LoadResult(parsed.dataset))
                    if on_batch is not None:
                        on_batch(report, parsed.rows)
    except _FileFailure as failure:
        progress.finish()
        return _failed(report, failure.reason, started)
    progress.finish()
    report.seconds = time.perf_counter() - started
    return report


def _failed(report: FileReport, reason: str, started: float) -> FileReport:
    report.status = "failed"
    report.error = reason if reason.startswith(report.path) else f"{report.path}: {reason}"
    report.seconds = time.perf_counter() - started
    return report


def _log_file(say: Any, report: FileReport) -> None:
    if report.status == "failed":
        say.warning(f"{report.path}: failed: {report.error}")
    elif report.status == "skipped":
        say.info(f"{report.path}: unchanged since loaded, skipped")
    else:
        say.info(
            f"{report.path}: {report.status} ({report.layout}, times in {report.time_unit}): "
            f"{report.fetched} rows, {report.inserted} inserted, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.quarantined} quarantined"
        )
        for warning in report.warnings:
            say.info(f"{report.path}: {warning}")


def load_file(
    engine: sa.Engine,
    folder: Path,
    path: Path,
    *,
    latest: ledger.LedgerEntry | None = None,
    run_id: str | None = None,
    default_timezone: str | None = None,
    batch_rows: int = 50_000,
    now: datetime | None = None,
    on_batch: Callable[[FileReport, int], None] | None = None,
) -> FileReport:
    """Load one file unless its current version is already in the ledger; never raises for its content.

    The file is read and written batch by batch (`read_file`), so its size is not bounded by memory. A
    problem found in a later batch fails the file after the earlier batches were stored: they stay (the
    next load of the fixed file upserts over them), the report counts them and says so. A checksum
    sidecar (`<file>.CHECKSUM`) is verified first: a mismatch fails the file before anything is written.
    `on_batch(report, rows)` is called after each batch is stored (progress display).
    """
    started = time.perf_counter()
    relative = path.relative_to(folder).as_posix()
    try:
        print_ = ledger.fingerprint(path)
    except OSError as exc:
        # Vanished or unreadable between listing and reading: nothing to record against a hash.
        return FileReport(relative, "failed", error=f"{relative}: cannot read the file: {exc}")
    report = FileReport(relative, "skipped", size_bytes=print_.size, sha256=print_.sha256)
    if ledger.is_current(latest, print_):
        report.layout, report.time_unit = latest.layout, latest.time_unit
        return report
    problem = checksum_problem(path, print_.sha256)
    if problem is not None:
        return _fail(engine, report, print_, run_id, problem, started)
    progress = _Progress(report)
    batches = read_file(path, relative_to=folder, default_timezone=default_timezone, batch_rows=batch_rows)
    target = _Target(engine, run_id=run_id, source=f"file:{relative}", batch_rows=batch_rows, now=now)
    chunk = _Chunk(target, progress, relative, on_batch)
    try:
        with contextlib.closing(batches):  # a failure stops reading: the file and its archive are closed now
            while (parsed := _next_read(batches, relative, chunk)) is not None:
                progress.describe(parsed)
                if not parsed.empty:
                    chunk.add(parsed)
            chunk.store()
    except _FileFailure as failure:
        progress.finish()
        return _fail(engine, report, print_, run_id, progress.explained(failure.reason), started)
    progress.finish()
    report.status = "empty" if report.fetched == 0 else "partial" if report.quarantined else "loaded"
    _record(engine, report, print_, run_id, status=report.status, seen=progress.seen)
    report.seconds = time.perf_counter() - started
    return report


class _FileFailure(Exception):
    """A problem of the file's content (or of its rows in the warehouse): the file fails, others go on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Target:
    """Where a file's batches go."""

    engine: sa.Engine
    run_id: str | None
    source: str
    batch_rows: int
    now: datetime | None


def _next_batch(batches: Iterator[ParsedFile], relative: str) -> ParsedFile | None:
    """The file's next batch, None at its end; a reading problem as `_FileFailure`."""
    try:
        return next(batches, None)
    except LandingFileError as exc:
        raise _FileFailure(str(exc)) from None
    except Exception as exc:  # a file we do not understand must not stop the others
        log.exception("unexpected error reading %s", relative)
        raise _FileFailure(f"unexpected {type(exc).__name__}: {exc}") from None


def _next_read(batches: Iterator[ParsedFile], relative: str, chunk: _Chunk) -> ParsedFile | None:
    """The file's next batch; when reading it fails, the batches read before it are stored first (they
    stay, counted, as when each batch was stored as soon as it was read)."""
    try:
        return _next_batch(batches, relative)
    except _FileFailure:
        chunk.store()
        raise


class _Chunk:
    """A file's batches gathered for one `load_frame` call of up to `BATCHES_PER_LOAD` batches.

    `load_frame` validates, scores and encodes its next batch in worker threads while the current one is
    written, which overlaps nothing when it is handed one batch at a time (profile of a Feather load:
    the writing thread waited on that preparation for about half of the load). The rows stay bounded (a
    chunk of 8 batches of 50,000 candles is about 40 MB) and each batch is still its own transaction.
    """

    def __init__(
        self,
        target: _Target,
        progress: _Progress,
        relative: str,
        on_batch: Callable[[FileReport, int], None] | None,
    ) -> None:
        self.target, self.progress, self.relative, self.on_batch = target, progress, relative, on_batch
        self.batches: list[ParsedFile] = []
        self.limit = BATCHES_PER_LOAD * max(1, target.batch_rows)

    def add(self, parsed: ParsedFile) -> None:
        self.batches.append(parsed)
        if sum(len(b.frame) for b in self.batches) >= self.limit:
            self.store()

    def store(self) -> None:
        """Quarantine the gathered batches' unreadable rows, load the others, count them."""
        batches, self.batches = self.batches, []
        if not batches:
            return
        frames = [b.frame for b in batches if len(b.frame)]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames) if frames else batches[0].frame
        result = _load_rows(self.target, batches, frame, self.relative)
        self.progress.count(batches, frame, result)
        if self.on_batch is not None:
            for parsed in batches:
                self.on_batch(self.progress.report, parsed.rows)


def _load_rows(target: _Target, batches: list[ParsedFile], frame: pd.DataFrame, relative: str) -> LoadResult:
    """Quarantine the batches' unreadable rows, load the others (`frame`: their rows together)."""
    try:
        for parsed in batches:
            _quarantine_unreadable(target, parsed)
        return load_frame(
            target.engine,
            batches[0].dataset,
            frame,
            run_id=target.run_id,
            source=target.source,
            batch_rows=target.batch_rows,
            now=target.now,
        )
    except (_FileFailure, *_INFRASTRUCTURE):
        raise
    except (StructuralError, ValueError, sa.exc.DBAPIError) as exc:  # ValueError: UpsertInputError
        # The file's rows break a table constraint: a data problem, recorded against the file.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _FileFailure(f"rows rejected by the warehouse: {reason}") from None
    except Exception as exc:
        log.exception("unexpected error loading %s", relative)
        raise _FileFailure(f"unexpected {type(exc).__name__}: {exc}") from None


def _joined(values: Iterable[Any]) -> str | None:
    return ",".join(sorted(str(v) for v in values)) or None


class _Progress:
    """A file's report, batch by batch: counts add up, descriptions and warnings are kept once each."""

    def __init__(self, report: FileReport) -> None:
        self.report = report
        self.layouts: dict[str, None] = {}  # ordered set: descriptions of the batches with rows
        self.empty_layout: str | None = None
        self.series: dict[str, set] = {"exchange": set(), "symbol": set(), "interval": set()}
        self.reasons: Counter = Counter()
        self.kept_with_warning: Counter = Counter()
        self.seen: dict[tuple[str, str], tuple[datetime, datetime]] = {}  # (exchange, symbol) -> time span

    def describe(self, parsed: ParsedFile) -> None:
        """What the batch was read as, before it is loaded (a failed load still says what was read)."""
        report = self.report
        report.dataset, report.archive = parsed.dataset, parsed.archive
        report.price = parsed.price
        if parsed.empty:
            self.empty_layout = self.empty_layout or parsed.description
            return
        self.layouts.setdefault(parsed.description)
        report.time_unit = report.time_unit or parsed.time_unit
        report.warnings.extend(w for w in parsed.warnings if w not in report.warnings)
        for name, values in self.series.items():
            if name in parsed.frame.columns:
                values.update(parsed.frame[name].dropna().unique())

    def count(self, batches: list[ParsedFile], frame: pd.DataFrame, result: LoadResult) -> None:
        """Add batches read and loaded together (`frame`: their readable rows, `result`: its load)."""
        report = self.report
        for parsed in batches:
            self.reasons.update(parsed.rejected_rule.astype(str).tolist())
            report.fetched += parsed.rows
            report.quarantined += len(parsed.rejected)
        self.reasons.update(result.quarantine_reasons)
        self.kept_with_warning.update(result.warnings)
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.quarantined += result.quarantined
        self._see(frame)
        low, high = result.min_time, result.max_time
        if low is None and len(frame):
            low = frame["time"].min().to_pydatetime()
            high = frame["time"].max().to_pydatetime()
        if low is not None:
            report.min_time = min(low, report.min_time) if report.min_time else low
            report.max_time = max(high, report.max_time) if report.max_time else high

    def _see(self, frame: pd.DataFrame) -> None:
        """Widen each instrument's first/last time by the batch's rows (what `instruments` learns)."""
        if frame.empty or not {"exchange", "symbol", "time"} <= set(frame.columns):
            return
        spans = frame.groupby(["exchange", "symbol"])["time"].agg(["min", "max"])
        for key, (low, high) in spans.iterrows():
            low, high = low.to_pydatetime(), high.to_pydatetime()
            old_low, old_high = self.seen.get(key, (low, high))
            self.seen[key] = (min(low, old_low), max(high, old_high))

    def finish(self) -> None:
        report = self.report
        report.layout = ",".join(self.layouts) or self.empty_layout
        report.exchange, report.symbol, report.interval = (_joined(v) for v in self.series.values())
        report.quarantine_reasons = dict(sorted(self.reasons.items()))
        for rule, count in self.kept_with_warning.items():
            report.warnings.append(f"{count} row(s) kept with warning {rule!r} (lower quality score)")

    def explained(self, reason: str) -> str:
        """A failure's reason, with what earlier batches of the file already stored."""
        if self.report.fetched == 0:
            return reason
        return (
            f"{reason} (the file's first {self.report.fetched} rows were loaded before this and stay; "
            "loading the fixed file upserts over them)"
        )


def _quarantine_unreadable(target: _Target, parsed: ParsedFile) -> None:
    """Rows the parser could not read go to quarantine with its precise reason, one transaction per batch."""
    rejected = parsed.rejected
    for start in range(0, len(rejected), max(1, target.batch_rows)):
        batch = rejected.iloc[start : start + target.batch_rows]
        split = SplitResult(
            good=parsed.frame.iloc[0:0],
            rejected=batch.reset_index(drop=True),
            rejected_rule=parsed.rejected_rule.reindex(batch.index).reset_index(drop=True),
            rejected_message=parsed.rejected_message.reindex(batch.index).reset_index(drop=True),
            warnings=pd.Series(dtype="int64"),
        )
        with target.engine.begin() as conn:
            write_quarantine(
                conn, parsed.dataset, split, run_id=target.run_id, partition_key=None, source=target.source
            )


def _fail(
    engine: sa.Engine,
    report: FileReport,
    print_: ledger.Fingerprint,
    run_id: str | None,
    reason: str,
    started,
) -> FileReport:
    _failed(report, reason, started)
    _record(engine, report, print_, run_id, status="failed")
    report.seconds = time.perf_counter() - started
    return report


def _record(
    engine: sa.Engine,
    report: FileReport,
    print_: ledger.Fingerprint,
    run_id: str | None,
    *,
    status: str,
    seen: dict[tuple[str, str], tuple[datetime, datetime]] | None = None,
) -> None:
    """The file's ledger entry and, for a loaded file, the instruments it has rows of: one transaction."""
    with engine.begin() as conn:
        if seen:
            upsert_instruments(
                conn, file_instruments(conn, seen, source=f"file:{report.archive or 'landing'}")
            )
        ledger.record(
            conn,
            path=report.path,
            print_=print_,
            status=status,
            run_id=run_id,
            layout=report.layout,
            time_unit=report.time_unit,
            exchange=report.exchange,
            symbol=report.symbol,
            interval=report.interval,
            rows_loaded=report.inserted + report.updated + report.unchanged,
            rows_quarantined=report.quarantined,
            error=report.error,
            first_time=report.min_time,
            last_time=report.max_time,
        )


def file_instruments(
    conn: sa.Connection, seen: dict[tuple[str, str], tuple[datetime, datetime]], *, source: str
) -> list[dict[str, Any]]:
    """`instruments` rows of what a file has rows of, first/last seen = the rows' time span. One the
    warehouse already knows (from the exchange) is offered as stored, only its span widened, so its
    `active` flag, sizes and raw info stay the exchange's; a new one is described by its unified symbol."""
    rows = []
    for exchange in sorted({exchange for exchange, _ in seen}):
        known = {r.symbol: asdict(r) for r in get_instruments(conn, exchange=exchange)}
        for (exch, symbol), (first, last) in sorted(seen.items()):
            if exch != exchange:
                continue
            try:
                row = known.get(symbol) or {"exchange": exchange, "symbol": symbol, "source": source,
                                            **instrument_fields(symbol)}  # fmt: skip
            except SymbolError as exc:  # rows stored under a non-unified name: nothing to describe
                log.warning("no instrument for %s: %s", source, exc)
                continue
            rows.append({**row, "first_seen": first, "last_seen": last})
    return rows


def summary(report: FolderReport) -> dict[str, Any]:
    """Totals of a folder load as plain values (for logs, metadata, the CLI)."""
    return {
        "files_seen": report.seen,
        "files_loaded": report.loaded,
        "files_skipped": report.skipped,
        "files_failed": report.failed,
        "files_empty": report.empty,
        "rows_fetched": report.fetched,
        "rows_inserted": report.inserted,
        "rows_updated": report.updated,
        "rows_unchanged": report.unchanged,
        "rows_quarantined": report.quarantined,
        "quarantine_reasons": report.quarantine_reasons,
        "min_time": report.min_time.isoformat() if report.min_time else None,
        "max_time": report.max_time.isoformat() if report.max_time else None,
    }


def failed_paths(reports: Iterable[FileReport]) -> list[str]:
    return [r.path for r in reports if r.status == "failed"]
