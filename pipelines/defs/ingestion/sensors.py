"""The landing-folder sensor: requests a run when the folder holds files the `ingest_files` ledger has not
seen in their current version.

The (path, size, mtime) digest of the settled files is the cheap test of every tick (the cursor). When it
changed, the ledger decides: a file is new when it has no entry, its size differs from its latest entry's,
or it was modified after that entry was written. Files the demo or an earlier run just loaded, and a file
whose failure is already recorded (the `historical_files_no_failed_files` check reports it), do not start
a run that would read them all again and log the known failure once more.
"""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from market_warehouse.pipelines.defs.ingestion.jobs import historical_files_job
from market_warehouse.resources.dagster_resources import LandingFolderResource, WarehouseResource
from market_warehouse.resources.files import ledger
from market_warehouse.resources.files.landing import landed_files


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


def unseen_files(
    folder: Path, warehouse: WarehouseResource, *, settle_seconds: float
) -> tuple[list[str], int]:
    """(settled files the ledger has not seen in their current version, of those the known-failed count)."""
    now = time.time()  # the system clock: compared with st_mtime (see folder_state)
    stats: dict[str, tuple[int, float]] = {}
    for path in landed_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        if now - stat.st_mtime >= settle_seconds:
            stats[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime)
    with warehouse.engine().connect() as conn:
        entries = ledger.latest_entries(conn, list(stats))
    unseen, failed = [], 0
    for relative, (size, mtime) in sorted(stats.items()):
        entry = entries.get(relative)
        written = entry.loaded_at.replace(tzinfo=entry.loaded_at.tzinfo or UTC) if entry else None
        if entry is None or entry.size_bytes != size or datetime.fromtimestamp(mtime, UTC) > written:
            unseen.append(relative)
        elif entry.status == "failed":
            failed += 1
    return unseen, failed


@dg.sensor(
    name="landing_folder_sensor",
    job=historical_files_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests historical_files_job when files of the landing folder appear or change.",
)
def landing_folder_sensor(
    context: dg.SensorEvaluationContext, landing: LandingFolderResource, warehouse: WarehouseResource
):
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
    unseen, failed = unseen_files(folder, warehouse, settle_seconds=landing.settle_seconds)
    if not unseen:
        known = f"; {failed} known failed (fix or replace them)" if failed else ""
        return dg.SkipReason(f"all {count} landed files already in the ledger{known}{note}")
    return dg.RunRequest(
        run_key=digest,
        tags={"market-warehouse/landed-files": str(count), "market-warehouse/unseen-files": str(len(unseen))},
    )
