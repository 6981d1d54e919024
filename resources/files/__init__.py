"""Landed files (historical JSON dumps): layout detection, parsing, the file ledger and folder loading.

Plain Python: usable from a script without Dagster. `landing.load_landing_folder` is the entry point.
"""

from __future__ import annotations


class LandingFileError(ValueError):
    """A file that cannot be loaded as a whole; the message names the file's problem for the ledger."""
