"""What the market-data assets and the gap-backfill ops share: run config, windows, load context, retries."""

# No `from __future__ import annotations`: Dagster reads the config types of the signatures.
from datetime import UTC

import dagster as dg
import pandas as pd

from market_warehouse.pipelines.retries import retry_transient
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.exchanges.gaps import GapReport, gap_report, lookback_window
from market_warehouse.resources.exchanges.ingest import LoadContext
from market_warehouse.resources.exchanges.universe import Universe

CODE_VERSION = "1"
# Transient errors only (exchange outages, rate limits, database disconnects and conflicts), with the back-off
# of the `exchanges` resource's `step_retry_*` settings; anything else fails the step at once, named.
RETRY_TRANSIENT = retry_transient(lambda context: context.resources.exchanges.step_backoff())


class MarketDataConfig(dg.Config):
    """Run configuration shared by the market-data assets."""

    refetch: bool = False  # ask the exchange again for the whole window, ignoring the coverage ledger
    exchanges: list[str] = []  # only these exchanges of the universe (default: all)


def window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    window = context.partition_time_window
    return pd.Timestamp(window.start).tz_convert(UTC), pd.Timestamp(window.end).tz_convert(UTC)


def selected(universe: Universe, config: MarketDataConfig):
    chosen = [c for c in universe.exchanges if not config.exchanges or c.name in config.exchanges]
    unknown = set(config.exchanges) - {c.name for c in universe.exchanges}
    if unknown:
        raise dg.Failure(f"exchanges {sorted(unknown)} are not in the universe {universe.path}")
    return chosen


def load_context(context, warehouse: WarehouseResource, exchanges: ExchangeResource) -> LoadContext:
    return LoadContext(warehouse.engine(), run_id=context.run.run_id, backoff=exchanges.backoff())


class GapConfig(dg.Config):
    """The window of a gap report: `start`/`end` (ISO dates or times, UTC), else the last `lookback_days`."""

    lookback_days: int = 7
    start: str | None = None
    end: str | None = None
    exchanges: list[str] = []


def _gap_window(config: GapConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    start, end = lookback_window(config.lookback_days)
    return _as_utc(config.start, start), _as_utc(config.end, end)


def _as_utc(text: str | None, default: pd.Timestamp) -> pd.Timestamp:
    """An ISO date or time from run config; without a zone it is UTC, like every time in the warehouse."""
    if not text:
        return default
    stamp = pd.Timestamp(text)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def report_metadata(report: GapReport) -> dict[str, object]:
    return {
        "gaps": report.gap_count,
        "missing_candles": report.missing,
        "answered_empty_candles": sum(s.answered_empty for s in report.series),
        "series": len(report.series),
        "missing_funding_events": report.funding_missing,
        "report": dg.MetadataValue.md(report.markdown()),
    }


def gap_report_of(config: GapConfig, warehouse: WarehouseResource, exchanges: ExchangeResource) -> GapReport:
    """The gap report over the configured window (the `coverage_report` asset and the `find_gaps` op)."""
    start, end = _gap_window(config)
    return gap_report(
        warehouse.engine(), exchanges.universe(), start, end, exchanges=set(config.exchanges) or None
    )
