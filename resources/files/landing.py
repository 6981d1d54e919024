"""Load every file of a landing folder into `ohlcv`, each file on its own.

One bad file never stops the others: it is recorded in the ledger as failed with a reason naming the file
(and the row or field when that is the problem) and left in place for someone to fix. Rows that cannot be
read are quarantined with their reason (`quarantine.source` = `file:<path>`); rows that can are validated,
quarantined or upserted by `resources.warehouse.load.load_frame`. Per file and in total:
fetched = inserted + updated + unchanged + quarantined.

Database connection failures are not a property of a file: they propagate and end the run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from resources.files import LandingFileError, ledger
from resources.files.layouts import ParsedFile, parse_file
from resources.quality.quarantine import write_quarantine
from resources.quality.split import SplitResult, StructuralError
from resources.warehouse.load import LoadResult, load_frame

DATASET = "ohlcv"
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

    @property
    def balanced(self) -> bool:
        return self.fetched == self.inserted + self.updated + self.unchanged + self.quarantined

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
    """Regular files under `folder`, sorted; hidden files and partial downloads are not landed data.

    Writers should land a file under a temporary or hidden name and rename it when complete.
    """
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.name.lower().endswith(_IGNORED_SUFFIXES) or not path.is_file():
            continue
        found.append(path)
    return sorted(found)


def load_landing_folder(
    engine: sa.Engine,
    folder: Path | str,
    *,
    run_id: str | None = None,
    default_timezone: str | None = None,
    batch_rows: int = 50_000,
    now: datetime | None = None,
    logger: Any = None,
) -> FolderReport:
    """Load every landed file of `folder` not already loaded in its current version.

    `default_timezone` is the zone of naive ISO times in files that declare none (else they fail);
    `now` is the reference for "no candle still open" (default: the wall clock); `logger` takes any object
    with info/warning methods (the Dagster context's log).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder {folder} does not exist or is not a folder")
    say = logger or log
    report = FolderReport(folder=str(folder))
    paths = landed_files(folder)
    with engine.connect() as conn:
        latest = ledger.latest_entries(conn, [p.relative_to(folder).as_posix() for p in paths])
    for path in paths:
        file_report = load_file(
            engine,
            folder,
            path,
            latest=latest.get(path.relative_to(folder).as_posix()),
            run_id=run_id,
            default_timezone=default_timezone,
            batch_rows=batch_rows,
            now=now,
        )
        report.files.append(file_report)
        _log_file(say, file_report)
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
) -> FileReport:
    """Load one file unless its current version is already in the ledger; never raises for its content."""
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
    try:
        parsed = parse_file(path, relative_to=folder, default_timezone=default_timezone)
    except LandingFileError as exc:
        return _fail(engine, report, print_, run_id, str(exc), started)
    except Exception as exc:  # a file we do not understand must not stop the others
        log.exception("unexpected error reading %s", relative)
        return _fail(engine, report, print_, run_id, f"unexpected {type(exc).__name__}: {exc}", started)
    _describe(report, parsed)
    if parsed.empty:
        report.status = "empty"
        _record(engine, report, print_, run_id, status="empty")
        report.seconds = time.perf_counter() - started
        return report
    source = f"file:{relative}"
    try:
        _quarantine_unreadable(engine, parsed, run_id=run_id, source=source, batch_rows=batch_rows)
        result = load_frame(
            engine, DATASET, parsed.frame, run_id=run_id, source=source, batch_rows=batch_rows, now=now
        )
    except _INFRASTRUCTURE:
        raise
    except (StructuralError, ValueError, sa.exc.DBAPIError) as exc:  # ValueError: UpsertInputError
        # The file's rows break a table constraint: a data problem, recorded against the file.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return _fail(engine, report, print_, run_id, f"rows rejected by the warehouse: {reason}", started)
    except Exception as exc:
        log.exception("unexpected error loading %s", relative)
        return _fail(engine, report, print_, run_id, f"unexpected {type(exc).__name__}: {exc}", started)
    _account(report, parsed, result)
    report.status = "partial" if report.quarantined else "loaded"
    _record(engine, report, print_, run_id, status=report.status)
    report.seconds = time.perf_counter() - started
    return report


def _describe(report: FileReport, parsed: ParsedFile) -> None:
    report.layout = parsed.description
    report.time_unit = parsed.time_unit
    report.warnings = list(parsed.warnings)
    frame = parsed.frame
    if len(frame):
        report.exchange = _joined(frame["exchange"])
        report.symbol = _joined(frame["symbol"])
        report.interval = _joined(frame["interval"])


def _joined(values: pd.Series) -> str:
    return ",".join(sorted(str(v) for v in values.dropna().unique()))


def _quarantine_unreadable(
    engine: sa.Engine, parsed: ParsedFile, *, run_id: str | None, source: str, batch_rows: int
) -> None:
    """Rows the parser could not read go to quarantine with its precise reason, one transaction per batch."""
    rejected = parsed.rejected
    for start in range(0, len(rejected), max(1, batch_rows)):
        batch = rejected.iloc[start : start + batch_rows]
        split = SplitResult(
            good=parsed.frame.iloc[0:0],
            rejected=batch.reset_index(drop=True),
            rejected_rule=parsed.rejected_rule.reindex(batch.index).reset_index(drop=True),
            rejected_message=parsed.rejected_message.reindex(batch.index).reset_index(drop=True),
            warnings=pd.Series(dtype="int64"),
        )
        with engine.begin() as conn:
            write_quarantine(conn, DATASET, split, run_id=run_id, partition_key=None, source=source)


def _account(report: FileReport, parsed: ParsedFile, result: LoadResult) -> None:
    reasons = Counter(parsed.rejected_rule.astype(str).tolist())
    reasons.update(result.quarantine_reasons)
    report.fetched = parsed.rows
    report.inserted, report.updated, report.unchanged = result.inserted, result.updated, result.unchanged
    report.quarantined = len(parsed.rejected) + result.quarantined
    report.quarantine_reasons = dict(sorted(reasons.items()))
    report.min_time, report.max_time = result.min_time, result.max_time
    if report.min_time is None and len(parsed.frame):
        report.min_time = parsed.frame["time"].min().to_pydatetime()
        report.max_time = parsed.frame["time"].max().to_pydatetime()
    for rule, count in result.warnings.items():
        report.warnings.append(f"{count} row(s) kept with warning {rule!r} (lower quality score)")


def _fail(
    engine: sa.Engine,
    report: FileReport,
    print_: ledger.Fingerprint,
    run_id: str | None,
    reason: str,
    started,
) -> FileReport:
    report.status = "failed"
    report.error = reason if reason.startswith(report.path) else f"{report.path}: {reason}"
    _record(engine, report, print_, run_id, status="failed")
    report.seconds = time.perf_counter() - started
    return report


def _record(
    engine: sa.Engine, report: FileReport, print_: ledger.Fingerprint, run_id: str | None, *, status: str
) -> None:
    with engine.begin() as conn:
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
