"""Partitioning and concurrency shared by every asset: UTC days, and the pools that bound DB load.

A backfill of N days is a single run (`BackfillPolicy.single_run()`) that loads in bounded batches.
"""

from __future__ import annotations

import dagster as dg

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()

# Concurrency pools (limits are set in dagster.yaml / the Dagster UI): warehouse writes vs maintenance.
WAREHOUSE_POOL = "warehouse"
MAINTENANCE_POOL = "maintenance"
