"""Checks of the market-data assets: the three load checks of each checked dataset (`pipelines/datasets.py`)."""

from market_warehouse.pipelines.datasets import MARKET_DATA, checked_in
from market_warehouse.pipelines.defs.quality.checks import checks_of

CHECKS = checks_of(checked_in(MARKET_DATA))
