"""Derived: features, forecasts and accuracy, the reference strategy's signals, backtest, equity and risk."""

import dagster as dg

from market_warehouse.pipelines.defs.derived.assets import (
    CODE_VERSIONS,
    DERIVED_ASSETS,
    backtest_asset,
    equity_curve_asset,
    features_asset,
    forecast_accuracy_asset,
    forecasts_asset,
    risk_metrics_asset,
    trading_signals_asset,
)
from market_warehouse.pipelines.defs.derived.jobs import derived_job
from market_warehouse.pipelines.defs.derived.resources import AnalyticsResource
from market_warehouse.pipelines.defs.derived.schedules import daily_derived

defs = dg.Definitions(
    assets=DERIVED_ASSETS,
    jobs=[derived_job],
    schedules=[daily_derived],
    resources={"analytics": AnalyticsResource()},
)

__all__ = [
    "CODE_VERSIONS",
    "DERIVED_ASSETS",
    "AnalyticsResource",
    "backtest_asset",
    "daily_derived",
    "defs",
    "derived_job",
    "equity_curve_asset",
    "features_asset",
    "forecast_accuracy_asset",
    "forecasts_asset",
    "risk_metrics_asset",
    "trading_signals_asset",
]
