"""Observability: the sensor that reports assets late by their freshness policy (no assets, no jobs)."""

import dagster as dg

from market_warehouse.pipelines.defs.observability.sensors import (
    freshness_report,
    freshness_state,
    stale_assets_sensor,
)

defs = dg.Definitions(sensors=[stale_assets_sensor])

__all__ = ["defs", "freshness_report", "freshness_state", "stale_assets_sensor"]
