"""Live capture (issue 15): the service runs outside Dagster; Dagster observes it (source asset + check).
The `warehouse` and `exchanges` resources are the code location's (definitions.py, market_data)."""

import dagster as dg

from market_warehouse.pipelines.defs.stream.assets import live_capture
from market_warehouse.pipelines.defs.stream.checks import CHECKS, live_capture_fresh

defs = dg.Definitions(assets=[live_capture], asset_checks=CHECKS)

__all__ = ["defs", "live_capture", "live_capture_fresh"]
