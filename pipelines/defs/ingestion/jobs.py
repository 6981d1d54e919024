"""The job of the landing folder: load its new and changed files."""

import dagster as dg

from market_warehouse.pipelines.defs.ingestion.assets import historical_files

historical_files_job = dg.define_asset_job(
    "historical_files_job",
    selection=dg.AssetSelection.assets(historical_files),
    description="Load the landing folder's new and changed files (requested by landing_folder_sensor).",
)
