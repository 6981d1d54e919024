"""The live capture as Dagster sees it: an observable source asset (issue 15).

The capture service (`market-warehouse stream`) is not a Dagster run; it writes its heartbeat to
`stream_state` and its holes to `capture_gaps`. Observing `live_capture` reads them: per stream the lag
(now - newest committed exchange time), rows in the last minute, exchange->commit lag p50/p99, reconnects,
open and unfilled holes. The data version is the newest commit, so the UI shows when data last arrived.
"""

# No `from __future__ import annotations`: Dagster reads the resource types of the signatures.
import warnings

import dagster as dg

from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.stream.ledger import StreamStatus, stream_status


def status_metadata(states: list[StreamStatus]) -> dict[str, dg.MetadataValue]:
    """One table row per stream, plus the totals a person checks first."""
    rows = [
        {
            "stream": f"{s.exchange} {s.symbol} {s.channel}",
            "status": s.status,
            "lag_s": None if s.lag_seconds is None else round(s.lag_seconds, 1),
            "rows_per_min": s.rows_last_minute,
            "lag_p50_ms": s.lag_p50_ms,
            "lag_p99_ms": s.lag_p99_ms,
            "reconnects": s.reconnects,
            "open_gaps": s.open_gaps,
            "unfilled_gaps": s.unfilled_gaps,
        }
        for s in states
    ]
    return {
        "streams": dg.MetadataValue.json(rows),
        "running": dg.MetadataValue.int(sum(s.status == "running" for s in states)),
        "rows_per_min": dg.MetadataValue.int(sum(s.rows_last_minute for s in states)),
        "open_gaps": dg.MetadataValue.int(sum(s.open_gaps for s in states)),
        "unfilled_gaps": dg.MetadataValue.int(sum(s.unfilled_gaps for s in states)),
    }


def observe_live_capture(warehouse: WarehouseResource) -> dg.ObserveResult:
    """Read the streams' heartbeats and holes; the newest commit is the data version."""
    with warehouse.engine().connect() as conn:
        states = stream_status(conn)
    newest = max((s.last_commit_time for s in states if s.last_commit_time), default=None)
    return dg.ObserveResult(
        metadata=status_metadata(states),
        data_version=dg.DataVersion(newest.isoformat() if newest else "never"),
    )


with warnings.catch_warnings():
    # `observable_source_asset` is "beta" in Dagster 1.13: known and chosen; its warning, at every import of
    # the code location (UI, daemon, every run worker), would flood the UI's logs.
    warnings.simplefilter("ignore", dg.BetaWarning)
    live_capture = dg.observable_source_asset(
        name="live_capture",
        group_name="stream",
        description="Websocket capture (market-warehouse stream): per-stream lag, rows/min, open holes.",
        auto_observe_interval_minutes=1,
    )(observe_live_capture)
