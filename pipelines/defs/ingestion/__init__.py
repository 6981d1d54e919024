"""Ingestion: historical files of the landing folder → ohlcv (asset, checks, job, folder sensor)."""

import dagster as dg

from market_warehouse.pipelines.defs.ingestion.assets import folder_metadata, historical_files
from market_warehouse.pipelines.defs.ingestion.checks import CHECKS, historical_files_no_failed_files
from market_warehouse.pipelines.defs.ingestion.jobs import historical_files_job
from market_warehouse.pipelines.defs.ingestion.sensors import folder_state, landing_folder_sensor
from market_warehouse.resources.dagster_resources import LandingFolderResource

defs = dg.Definitions(
    assets=[historical_files],
    asset_checks=CHECKS,
    jobs=[historical_files_job],
    sensors=[landing_folder_sensor],
    resources={"landing": LandingFolderResource()},
)

__all__ = [
    "defs",
    "folder_metadata",
    "folder_state",
    "historical_files",
    "historical_files_job",
    "historical_files_no_failed_files",
    "landing_folder_sensor",
]
