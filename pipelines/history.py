"""Historical JSON files → the warehouse: the `historical_files` asset, its check, job and folder sensor.

The asset loads every file of the landing folder not already loaded in its current version (the
`ingest_files` ledger decides) through `resources.files.landing`. A file that cannot be read is a data
problem, not a code problem: the asset still succeeds when the other files loaded, reports the failure in
its metadata and log, and the `historical_files_no_failed_files` check (WARN) fails until the file is
fixed or removed. The sensor requests a run when the set of (path, size, mtime) in the folder changes.
"""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import hashlib
import time
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from pipelines.partitions import WAREHOUSE_POOL
from pipelines.table_metadata import table_schema
from resources.dagster_resources import LandingFolderResource, WarehouseResource
from resources.files import ledger
from resources.files.landing import FileReport, FolderReport, landed_files, load_landing_folder

GROUP = "ingestion"
CODE_VERSION = "1"
TABLE = "ohlcv"
SHOWN_FILES = 200  # per-file table rows in the metadata; a larger folder is summarized


TABLE_METADATA = {"dagster/table_name": f"public.{TABLE}", "dagster/column_schema": table_schema(TABLE)}

_FILE_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("path", "string"),
        dg.TableColumn("status", "string", description="loaded, partial, empty, failed or skipped"),
        dg.TableColumn("layout", "string"),
        dg.TableColumn("time_unit", "string", description="s, ms, us, ns or iso"),
        dg.TableColumn("series", "string", description="exchange symbol interval"),
        dg.TableColumn("fetched", "int"),
        dg.TableColumn("inserted", "int"),
        dg.TableColumn("updated", "int"),
        dg.TableColumn("unchanged", "int"),
        dg.TableColumn("quarantined", "int"),
        dg.TableColumn("time_range", "string"),
        dg.TableColumn("error", "string"),
        dg.TableColumn("seconds", "float"),
    ]
)


def _landing_folder(landing: LandingFolderResource) -> Path:
    """The folder; the default one is created on first use, a configured one must exist (typo guard)."""
    folder = landing.folder()
    if not folder.exists() and landing.path is None:
        folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise dg.Failure(
            f"landing folder {folder} does not exist (configured path of the 'landing' resource)"
        )
    return folder


def _time_range(report: FileReport | FolderReport) -> str:
    if report.min_time is None:
        return ""
    return f"{report.min_time.isoformat()} / {report.max_time.isoformat()}"


def _file_record(report: FileReport) -> dg.TableRecord:
    series = " ".join(v for v in (report.exchange, report.symbol, report.interval) if v)
    return dg.TableRecord(
        {
            "path": report.path,
            "status": report.status,
            "layout": report.layout or "",
            "time_unit": report.time_unit or "",
            "series": series,
            "fetched": report.fetched,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "quarantined": report.quarantined,
            "time_range": _time_range(report),
            "error": report.error or "",
            "seconds": round(report.seconds, 3),
        }
    )


def _shown(report: FolderReport) -> list[FileReport]:
    """Failed first, then what was loaded, then skipped files: the interesting rows survive truncation."""
    order = {"failed": 0, "partial": 1, "loaded": 2, "empty": 3, "skipped": 4}
    return sorted(report.files, key=lambda f: (order.get(f.status, 5), f.path))[:SHOWN_FILES]


def _stored_rows(engine: sa.Engine, paths: list[str]) -> int:
    """Candles stored from the files now in the folder, by the ledger (no scan of the candle table)."""
    with engine.connect() as conn:
        entries = ledger.latest_entries(conn, paths)
    return sum(e.rows_loaded for e in entries.values())


def folder_metadata(report: FolderReport, folder: Path, row_count: int) -> dict[str, object]:
    metadata: dict[str, object] = {
        "landing_folder": str(folder),
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
        "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
        "time_range": _time_range(report) or "no rows loaded",
        "source": "landed files (JSON, NDJSON, gzip)",
        "files": dg.MetadataValue.table([_file_record(f) for f in _shown(report)], schema=_FILE_COLUMNS),
        "dagster/row_count": row_count,
        **TABLE_METADATA,
    }
    if report.seen > SHOWN_FILES:
        metadata["files_not_shown"] = report.seen - SHOWN_FILES
    if report.failures:
        metadata["failed_files"] = dg.MetadataValue.md(
            "\n".join(f"- `{f.path}`: {f.error}" for f in report.failures)
        )
    return metadata


@dg.asset(
    name="historical_files",
    group_name=GROUP,
    pool=WAREHOUSE_POOL,
    code_version=CODE_VERSION,
    kinds={"postgres", "json"},
    description=(
        "Candles of the historical JSON files of the landing folder (arrays, Binance klines, records, pandas "
        "orients, wrappers, NDJSON, gzip), loaded once per file version into ohlcv; unreadable rows are "
        "quarantined, unreadable files recorded as failed in ingest_files and left in place."
    ),
    metadata=TABLE_METADATA,
)
def historical_files(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, landing: LandingFolderResource
) -> dg.MaterializeResult:
    folder = _landing_folder(landing)
    engine = warehouse.engine()
    report = load_landing_folder(
        engine,
        folder,
        run_id=context.run.run_id,
        default_timezone=landing.default_timezone,
        logger=context.log,
    )
    for failure in report.failures:
        context.log.error(f"file not loaded: {failure.error}")
    context.log.info(
        f"{report.seen} files: {report.loaded} loaded, {report.skipped} unchanged, {report.empty} empty, "
        f"{report.failed} failed; rows: {report.fetched} fetched, {report.inserted} inserted, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.quarantined} quarantined"
    )
    row_count = _stored_rows(engine, [f.path for f in report.files])
    return dg.MaterializeResult(metadata=folder_metadata(report, folder, row_count))


@dg.asset_check(
    asset=historical_files,
    name="historical_files_no_failed_files",
    description="Every landed file now in the folder loaded in its latest version (WARN lists the others).",
)
def historical_files_no_failed_files(
    warehouse: WarehouseResource, landing: LandingFolderResource
) -> dg.AssetCheckResult:
    folder = landing.folder()
    paths = [p.relative_to(folder).as_posix() for p in landed_files(folder)] if folder.is_dir() else []
    with warehouse.engine().connect() as conn:
        failed = ledger.failed_entries(conn, paths)
    metadata: dict[str, object] = {"files_checked": len(paths), "files_failed": len(failed)}
    if failed:
        metadata["failed_files"] = dg.MetadataValue.md("\n".join(f"- `{e.path}`: {e.error}" for e in failed))
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"{len(failed)} landed file(s) failed to load: fix or remove them"
            if failed
            else "no failed files"
        ),
    )


historical_files_job = dg.define_asset_job(
    "historical_files_job",
    selection=dg.AssetSelection.assets(historical_files),
    description="Load the landing folder's new and changed files (requested by landing_folder_sensor).",
)


def folder_state(folder: Path, *, settle_seconds: float, now: float | None = None) -> tuple[str, int, int]:
    """(digest of the settled files' (path, size, mtime), settled count, files still being written)."""
    # The system clock, not resources.clock: st_mtime is stamped by it (a pinned clock would see files
    # from the future, or settled files as still being written).
    now = time.time() if now is None else now
    settled, busy = [], 0
    for path in landed_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue  # vanished since listed
        if now - stat.st_mtime < settle_seconds:
            busy += 1
            continue
        settled.append(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(sorted(settled)).encode()).hexdigest()
    return digest, len(settled), busy


@dg.sensor(
    name="landing_folder_sensor",
    job=historical_files_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests historical_files_job when files of the landing folder appear or change.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext, landing: LandingFolderResource):
    folder = landing.folder()
    if not folder.is_dir():
        return dg.SkipReason(f"landing folder {folder} does not exist yet")
    digest, count, busy = folder_state(folder, settle_seconds=landing.settle_seconds)
    note = f" ({busy} file(s) still being written)" if busy else ""
    if count == 0:
        return dg.SkipReason(f"no landed files in {folder}{note}")
    if digest == context.cursor:
        return dg.SkipReason(f"no new or changed files among {count}{note}")
    context.update_cursor(digest)
    return dg.RunRequest(run_key=digest, tags={"market-warehouse/landed-files": str(count)})


defs = dg.Definitions(
    assets=[historical_files],
    asset_checks=[historical_files_no_failed_files],
    jobs=[historical_files_job],
    sensors=[landing_folder_sensor],
    resources={"landing": LandingFolderResource()},
)
