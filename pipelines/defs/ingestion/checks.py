"""Checks of the `historical_files` asset: failed files (WARN) and the three load checks of its dataset."""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import dagster as dg

from market_warehouse.pipelines.datasets import INGESTION, checked_in
from market_warehouse.pipelines.defs.ingestion.assets import historical_files
from market_warehouse.pipelines.defs.quality.checks import checks_of
from market_warehouse.resources.dagster_resources import LandingFolderResource, WarehouseResource
from market_warehouse.resources.files import ledger
from market_warehouse.resources.files.landing import landed_files


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


CHECKS = [historical_files_no_failed_files, *checks_of(checked_in(INGESTION))]
