"""Landed files (historical candle dumps: JSON, CSV, Parquet, Feather; plain, gzipped or zipped): format and
layout detection, reading in batches, the file ledger and folder loading.

Plain Python: usable from a script without Dagster. `landing.load_landing_folder` is the entry point.
"""

from __future__ import annotations


class LandingFileError(ValueError):
    """A file that cannot be loaded as a whole; the message names the file's problem for the ledger."""
