"""`market-warehouse load PATH... [--dry-run] [--batch-rows N]`: a one-off migration of history files
outside Dagster, through the same code as the `historical_files` asset (`load_landing_folder`).

A PATH is a folder (every landed file under it, named relative to it in the ledger, as the asset names the
files of its landing folder) or a file (named relative to its folder). Progress bars (per file and overall,
with rows/s) go to stderr; the summary table to stdout. Exit code 1 when a file failed. `--dry-run` reads
every file and says what it would be loaded as, writing nothing (not even the ledger).
Nothing here imports Dagster: the command starts fast.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from market_warehouse.resources.files.landing import FileReport, FolderReport

_COLUMNS = (
    ("path", 48), ("status", 8), ("dataset", 13), ("layout", 40), ("instrument", 26), ("price", 13),
    ("interval", 8), ("rows", 10), ("inserted", 9), ("updated", 8), ("unchanged", 9), ("quarant.", 8),
    ("time range", 41), ("rows/s", 9),
)  # fmt: skip


@dataclass
class _Targets:
    """The files of the given paths, grouped by the folder their names are relative to."""

    roots: dict[Path, list[Path]] = field(default_factory=dict)

    def add(self, given: Path) -> None:
        from market_warehouse.resources.files.landing import landed_files

        if given.is_dir():
            self.roots.setdefault(given, []).extend(landed_files(given))
        else:
            self.roots.setdefault(given.parent, []).append(given)

    @property
    def count(self) -> int:
        return sum(len(files) for files in self.roots.values())


class _Bars:
    """rich progress bars: one for the file being read, one for all files; rows and rows/s on each."""

    def __init__(self, files: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.began = time.perf_counter()
        self.rows = 0
        self.overall = self.progress.add_task("all files", total=files, rows=0, rate=0.0)
        self.file_task: int | None = None
        self.file_started = self.began

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, relative: str, size_bytes: int) -> None:
        if self.file_task is not None:
            self.progress.remove_task(self.file_task)
        self.file_started = time.perf_counter()
        name = relative if len(relative) <= 40 else "…" + relative[-39:]
        self.file_task = self.progress.add_task(name, total=None, rows=0, rate=0.0)

    def batch(self, report: FileReport, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        file_rows = report.fetched
        self.progress.update(
            self.file_task, rows=file_rows, rate=file_rows / max(now - self.file_started, 1e-9)
        )
        self.progress.update(self.overall, rows=self.rows, rate=self.rows / max(now - self.began, 1e-9))

    def done(self, report: FileReport) -> None:
        self.progress.update(self.file_task, total=1, completed=1)
        self.progress.advance(self.overall)


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _row(report: FileReport) -> list[object]:
    instrument = " ".join(v for v in (report.exchange, report.symbol) if v)
    span = (
        f"{report.min_time:%Y-%m-%d %H:%M:%S} / {report.max_time:%Y-%m-%d %H:%M:%S}"
        if report.min_time
        else ""
    )
    rate = f"{report.fetched / report.seconds:,.0f}" if report.seconds and report.fetched else ""
    return [
        report.path, report.status, report.dataset, report.read_as, instrument, report.price, report.interval,
        f"{report.fetched:,}", *_stored(report),
        f"{report.quarantined:,}", span, rate,
    ]  # fmt: skip


def _stored(report: FileReport) -> list[str]:
    """Inserted, updated, unchanged: blank in a dry run, which stores nothing."""
    if report.status == "dry-run":
        return ["", "", ""]
    return [f"{report.inserted:,}", f"{report.updated:,}", f"{report.unchanged:,}"]


def summary_table(reports: list[FileReport]) -> str:
    """One line per file: what it was read as and what happened; failures' reasons after the table."""
    lines = ["  ".join(f"{name:<{width}}" for name, width in _COLUMNS).rstrip()]
    for report in reports:
        cells = [_cell(v, width) for v, (_, width) in zip(_row(report), _COLUMNS, strict=True)]
        lines.append("  ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, _COLUMNS, strict=True)).rstrip())
    for report in reports:
        if report.error:
            lines.append(f"failed: {report.error}")
    return "\n".join(lines)


def _totals(folders: list[FolderReport], seconds: float, *, dry_run: bool) -> str:
    files = [f for folder in folders for f in folder.files]
    fetched = sum(f.fetched for f in files)
    failed = sum(1 for f in files if f.status == "failed")
    skipped = sum(1 for f in files if f.status == "skipped")
    verb = "read (dry run, nothing written)" if dry_run else "loaded"
    stored = (
        ""
        if dry_run
        else (
            f", {sum(f.inserted for f in files):,} inserted, {sum(f.updated for f in files):,} updated, "
            f"{sum(f.unchanged for f in files):,} unchanged, {sum(f.quarantined for f in files):,} quarantined"
        )
    )
    return (
        f"{len(files)} files {verb}: {failed} failed, {skipped} unchanged since loaded; {fetched:,} rows{stored} "
        f"in {seconds:.1f} s ({fetched / max(seconds, 1e-9):,.0f} rows/s)"
    )


@click.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Read every file and say what it would load; write nothing.")
@click.option("--batch-rows", type=click.IntRange(1), help="Rows per batch (default: the loader's, 50,000).")
@click.option("--timezone", "default_timezone", help="Zone of naive times in files that declare none.")
@click.option("--no-progress", is_flag=True, help="No progress bars (the summary only).")
def load(
    paths: tuple[Path, ...],
    dry_run: bool,
    batch_rows: int | None,
    default_timezone: str | None,
    no_progress: bool,
) -> None:
    """Load history files (freqtrade folders, Binance Vision zips, Tardis CSVs, CSV/Parquet/Feather/JSON)."""
    from market_warehouse.resources import clock
    from market_warehouse.resources.files.landing import load_landing_folder
    from market_warehouse.resources.files.layouts import DEFAULT_BATCH_ROWS

    targets = _Targets()
    for given in paths:
        targets.add(given.resolve())
    engine = None if dry_run else _migrated_engine()
    run_id = f"cli-load-{clock.now():%Y%m%dT%H%M%S}"
    started = time.perf_counter()
    folders: list[FolderReport] = []
    try:
        with _observer(targets.count, quiet=no_progress) as observer:
            for root, files in targets.roots.items():
                folders.append(
                    load_landing_folder(
                        engine,
                        root,
                        run_id=run_id,
                        default_timezone=default_timezone,
                        batch_rows=batch_rows or DEFAULT_BATCH_ROWS,
                        paths=sorted(set(files)),
                        observer=observer,
                        dry_run=dry_run,
                    )  # fmt: skip
                )
    finally:
        if engine is not None:
            engine.dispose()
    click.echo(summary_table([f for folder in folders for f in folder.files]))
    click.echo(_totals(folders, time.perf_counter() - started, dry_run=dry_run))
    if any(folder.failed for folder in folders):
        sys.exit(1)


class _Silent:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _observer(files: int, *, quiet: bool) -> _Bars | _Silent:
    return _Silent() if quiet else _Bars(files)


def _migrated_engine():
    """The warehouse engine; a schema behind the code is a usage error (run `migrate`), not a traceback."""
    from market_warehouse.resources.database import warehouse_engine
    from market_warehouse.resources.schema import current_revision, head_revision

    engine = warehouse_engine()
    if current_revision(engine) != head_revision():
        engine.dispose()
        raise click.ClickException(
            "the warehouse schema is not at the latest revision: run `market-warehouse migrate`"
        )
    return engine
