"""The landing-folder sensor: requests a run when the set of (path, size, mtime) in the folder changes."""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import hashlib
import time
from pathlib import Path

import dagster as dg

from pipelines.defs.ingestion.jobs import historical_files_job
from resources.dagster_resources import LandingFolderResource
from resources.files.landing import landed_files


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
