"""`live_capture_fresh`: fails when a stream the service says is running has committed nothing for longer
than its exchange's `stream.stale_after_s` (a hung connection, a service that died without stopping)."""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import dagster as dg

from market_warehouse.pipelines.defs.stream.assets import live_capture, status_metadata
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.stream.config import stream_configs
from market_warehouse.resources.stream.ledger import stream_status

DEFAULT_STALE_AFTER_S = 120.0


@dg.asset_check(asset=live_capture, description="Every running stream committed rows recently.")
def live_capture_fresh(warehouse: WarehouseResource, exchanges: ExchangeResource) -> dg.AssetCheckResult:
    limits = {c.name: c.stale_after_s for c in stream_configs(exchanges.universe())}
    with warehouse.engine().connect() as conn:
        states = stream_status(conn)
    stale = [s for s in states if s.stale(limits.get(s.exchange, DEFAULT_STALE_AFTER_S))]
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "stale: " + ", ".join(f"{s.exchange} {s.symbol} {s.channel}" for s in stale) if stale else None
        ),
        metadata={**status_metadata(states), "stale": dg.MetadataValue.int(len(stale))},
    )


CHECKS = [live_capture_fresh]
