"""The derived job: every derived asset for one day (or a range of days, in one run)."""

import dagster as dg

from market_warehouse.pipelines.datasets import DERIVED

derived_job = dg.define_asset_job(
    "derived_job",
    selection=dg.AssetSelection.groups(DERIVED),
    description="Every derived asset (features, forecasts and accuracy, signals, backtest, equity, risk) for "
    "one day, or a range of days in one run.",
)
