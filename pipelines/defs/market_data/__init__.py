"""Market data: the five exchange datasets (one factory), the coverage report, their checks, jobs, schedules."""

import dagster as dg

from pipelines.defs.market_data.assets import (
    MARKET_DATA_ASSETS,
    coverage_report,
    market_metrics,
    market_trades,
    metric_series,
    ohlcv,
    orderbook_snapshots,
)
from pipelines.defs.market_data.checks import CHECKS
from pipelines.defs.market_data.jobs import backfill_gaps, find_gaps, gap_backfill_job, market_data_job
from pipelines.defs.market_data.schedules import daily_market_data, intraday_market_data, nightly_gap_backfill
from resources.dagster_resources import ExchangeResource

defs = dg.Definitions(
    assets=[ohlcv, market_trades, orderbook_snapshots, market_metrics, metric_series, coverage_report],
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
    "gap_backfill_job",
    "intraday_market_data",
    "market_data_job",
    "market_metrics",
    "market_trades",
    "metric_series",
    "nightly_gap_backfill",
    "ohlcv",
    "orderbook_snapshots",
]
