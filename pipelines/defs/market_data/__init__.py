"""Market data: the six exchange datasets (one factory), the coverage report, their checks, jobs, schedules."""

import dagster as dg

from market_warehouse.pipelines.defs.market_data.assets import (
    MARKET_DATA_ASSETS,
    coverage_report,
    funding_rates,
    market_metrics,
    market_trades,
    ohlcv,
    open_interest,
    orderbook_snapshots,
)
from market_warehouse.pipelines.defs.market_data.checks import CHECKS
from market_warehouse.pipelines.defs.market_data.jobs import (
    backfill_gaps,
    find_gaps,
    gap_backfill_job,
    market_data_job,
)
from market_warehouse.pipelines.defs.market_data.schedules import (
    daily_market_data,
    intraday_market_data,
    nightly_gap_backfill,
)
from market_warehouse.resources.dagster_resources import ExchangeResource

defs = dg.Definitions(
    assets=[
        ohlcv,
        market_trades,
        orderbook_snapshots,
        market_metrics,
        funding_rates,
        open_interest,
        coverage_report,
    ],
    asset_checks=CHECKS,
    jobs=[market_data_job, gap_backfill_job],
    schedules=[daily_market_data, intraday_market_data, nightly_gap_backfill],
    resources={"exchanges": ExchangeResource()},
)

__all__ = [
    "MARKET_DATA_ASSETS",
    "backfill_gaps",
    "coverage_report",
    "daily_market_data",
    "defs",
    "find_gaps",
    "funding_rates",
    "gap_backfill_job",
    "intraday_market_data",
    "market_data_job",
    "market_metrics",
    "market_trades",
    "nightly_gap_backfill",
    "ohlcv",
    "open_interest",
    "orderbook_snapshots",
]
