"""Historical files (freqtrade folders, Binance Vision zips, Tardis CSVs, JSON/CSV/Parquet/Feather) → the
warehouse: the `historical_files` asset (its check, job and sensor sit
next to it in this folder).

The asset loads every file of the landing folder not already loaded in its current version (the
`ingest_files` ledger decides) through `resources.files.landing`. A file that cannot be read is a data
problem, not a code problem: the asset still succeeds when the other files loaded, reports the failure in
its metadata and log, and the `historical_files_no_failed_files` check (WARN) fails until the file is
fixed or removed.
"""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from market_warehouse.pipelines.datasets import dataset
from market_warehouse.pipelines.partitions import WAREHOUSE_POOL
from market_warehouse.pipelines.table_metadata import table_metadata
from market_warehouse.resources.dagster_resources import LandingFolderResource, WarehouseResource
from market_warehouse.resources.files.landing import FileReport, FolderReport, load_landing_folder, summary

DATASET = dataset("historical_files")
CODE_VERSION = "1"
SHOWN_FILES = 200  # per-file table rows in the metadata; a larger folder is summarized


TABLE_METADATA = table_metadata(DATASET.table)

_FILE_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("path", "string"),
        dg.TableColumn("status", "string", description="loaded, partial, empty, failed or skipped"),
        dg.TableColumn("dataset", "string", description="ohlcv, market_trades or funding_rates"),
        dg.TableColumn("archive", "string", description="known layout: freqtrade, binance-vision, tardis"),
        dg.TableColumn("layout", "string", description="container:format:rows as read"),
        dg.TableColumn("time_unit", "string", description="s, ms, us, ns or iso"),
        dg.TableColumn("series", "string", description="exchange symbol interval [price kind]"),
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
    price = report.price if report.price != "trade" else None  # shown when not the default
    series = " ".join(v for v in (report.exchange, report.symbol, report.interval, price) if v)
    return dg.TableRecord(
        {
            "path": report.path,
            "status": report.status,
            "dataset": report.dataset or "",
            "archive": report.archive or "",
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


def _table_rows(engine: sa.Engine, table: str) -> int:
    """Rows stored in the asset's table (Dagster's `dagster/row_count` of an unpartitioned asset is the
    table's row count, not what a run touched: a no-op re-run reports the same number)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one())


def folder_metadata(report: FolderReport, folder: Path, row_count: int) -> dict[str, object]:
    totals = summary(report)
    metadata: dict[str, object] = {
        "landing_folder": str(folder),
        **{k: v for k, v in totals.items() if k not in ("quarantine_reasons", "min_time", "max_time")},
        "quarantine_reasons": dg.MetadataValue.json(totals["quarantine_reasons"]),
        "time_range": _time_range(report) or "no rows loaded",
        "source": "landed files (JSON, NDJSON, CSV, Parquet, Feather/Arrow IPC; gzip, zip)",
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
    name=DATASET.asset,
    group_name=DATASET.group,
    pool=WAREHOUSE_POOL,
    code_version=CODE_VERSION,
    kinds=set(DATASET.kinds),
    description=DATASET.description,
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
    row_count = _table_rows(engine, DATASET.table)
    return dg.MaterializeResult(metadata=folder_metadata(report, folder, row_count))
