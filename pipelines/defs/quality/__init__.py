"""Data quality: the shared builder of the three load checks; the checks themselves sit next to their asset."""

from market_warehouse.pipelines.datasets import checked_in
from market_warehouse.pipelines.defs.quality.checks import QuarantineFractionConfig, checks_of, quality_checks

# (asset, table, partitioned) of every asset carrying the load checks, read from `pipelines/datasets.py`.
CHECKED_ASSETS: tuple[tuple[str, str, bool], ...] = tuple(
    (d.asset, d.table, d.partitioned) for d in checked_in()
)

__all__ = ["CHECKED_ASSETS", "QuarantineFractionConfig", "checks_of", "quality_checks"]
