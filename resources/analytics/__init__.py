"""Derived analytics computed from the warehouse: features, forecasts, the reference strategy, equity/risk.

Plain Python (no Dagster): every function takes an engine or frames, so a notebook or a trading bot can run
the same computations the Dagster assets in `pipelines/defs/derived/` run.
"""
