"""Where the project keeps its state, read from the environment once.

Everything here is plain Python so that scripts and trading bots get the same answers as Dagster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = PROJECT_ROOT / "sql"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

WAREHOUSE_DB = "market_warehouse"
DAGSTER_DB = "dagster"


class ConfigurationError(RuntimeError):
    """Bad configuration: the message is one line meant for the user, never containing a secret."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    timescaledb: str  # "auto": use TimescaleDB when the server has it; "off": plain PostgreSQL behaviour

    @property
    def embedded_pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"


def load_settings() -> Settings:
    """Read settings from the environment; `MW_HOME` defaults to a git-ignored folder in the project."""
    home = Path(os.environ.get("MW_HOME") or PROJECT_ROOT / ".market-warehouse").expanduser().resolve()
    mode = os.environ.get("MW_TIMESCALEDB", "auto").strip().lower()
    if mode not in {"auto", "off"}:
        raise ConfigurationError(f"MW_TIMESCALEDB must be 'auto' or 'off', not {mode!r}")
    return Settings(database_url=os.environ.get("DATABASE_URL") or None, home=home, timescaledb=mode)
