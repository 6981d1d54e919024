"""Data quality without Dagster: rule model, vectorized row split, quarantine, scores, GX suites, archive.

Great Expectations is imported lazily inside `expectations.py` functions: its import takes seconds and the
hot path (row-level split before every upsert) never needs it.
"""
