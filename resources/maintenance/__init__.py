"""Warehouse maintenance without Dagster: aggregates, compression, retention, partitions and stats.

Each module does one job and returns a result with `.metadata()`; `pipelines/defs/maintenance/` only
schedules them. Order matters and is enforced there: refresh → compress → retention → stats.
"""
