"""Where the warehouse's history starts: the first daily partition of every asset.

Precedence: `MW_HISTORY_START`, else the universe file's `history_start`, else the start the demo recorded
for that universe in this `MW_HOME` (`DEMO_HISTORY_FILE`), else `DEFAULT_HISTORY_START`.

Why the demo records one: `market-warehouse demo` fills a few days (by default the last three), and
`market-warehouse ui` later shows every asset's partitions from the history start to today. Under the
default start those days were 3 bars of ~330 ("0 % filled"), and a window before the default start (the
quick start run on 2026-01-01, or `--end 2025-06-30`) was refused. So the demo starts its home's history
where its window starts, for the universe it ran with, unless the user said where history starts (the
variable or the universe's `history_start`, which always win). A real universe file (`MW_UNIVERSE`) has no
record unless the demo ran with it in that home, so a real user's default stays `DEFAULT_HISTORY_START`.

No Dagster here, and nothing that imports the partitions: the demo's command line records the start
before the code location (whose daily partitions are built from `history_start()` at import) is imported.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

from market_warehouse.resources import clock
from market_warehouse.resources.settings import ConfigurationError, load_settings
from market_warehouse.resources.universe_file import file_version, read_document, universe_path

DEFAULT_HISTORY_START = "2026-01-01"
HISTORY_START_ENV = "MW_HISTORY_START"
# In MW_HOME: {universe file path: first day of the demo windows run with it}.
DEMO_HISTORY_FILE = "demo-history-start.json"


def history_start(universe: str | os.PathLike | None = None) -> date:
    """The first day of the warehouse's history (see the module docstring for the precedence)."""
    return history_start_and_source(universe)[0]


def history_start_and_source(universe: str | os.PathLike | None = None) -> tuple[date, str]:
    """The first day and where it came from (an environment variable, a file and key, or the default)."""
    stated = user_history_start(universe)
    if stated:
        return stated
    path = universe_path(universe)
    recorded = _recorded(demo_history_file()).get(str(path))
    if recorded:
        where = (
            f"the demo's first day, recorded in {demo_history_file()} for {path.name} "
            f"({HISTORY_START_ENV} or the universe's history_start override it)"
        )
        return _iso_date(recorded, where), where
    return date.fromisoformat(DEFAULT_HISTORY_START), f"the default ({DEFAULT_HISTORY_START})"


def user_history_start(universe: str | os.PathLike | None = None) -> tuple[date, str] | None:
    """The start the user set (`MW_HISTORY_START`, else the universe's `history_start`) and where, if any."""
    from_env = os.environ.get(HISTORY_START_ENV)
    if from_env:
        return _iso_date(from_env, HISTORY_START_ENV), HISTORY_START_ENV
    path = universe_path(universe)
    document = read_document(path, file_version(path))
    stated = document.get("history_start") if isinstance(document, dict) else None
    if stated is None:
        return None
    where = f"{path}: history_start"
    return _iso_date(stated, where), where


def demo_window_days(days: int, end: date | None = None) -> tuple[date, date]:
    """First and last UTC day of the `days` days ending with `end` (default: yesterday by the clock, the
    last complete day)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = end or clock.today() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def record_demo_history_start(universe: str | os.PathLike | None, first_day: date) -> tuple[date, str]:
    """Start this home's history for `universe` no later than the demo window's `first_day` (the earliest
    window the demo ran with it), unless the user set the start; the start that applies and its source."""
    stated = user_history_start(universe)
    if stated:
        return stated  # the user's own start: the demo's window fits into it or is refused
    file = demo_history_file()
    records = _recorded(file)
    key = str(universe_path(universe))
    earliest = min(first_day, date.fromisoformat(records[key])) if key in records else first_day
    if records.get(key) != earliest.isoformat():
        records[key] = earliest.isoformat()
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f".{file.name}.part")
        partial.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
        partial.replace(file)
    return history_start_and_source(universe)


def demo_history_file() -> Path:
    return load_settings().home / DEMO_HISTORY_FILE


def _recorded(file: Path) -> dict[str, str]:
    if not file.is_file():
        return {}
    try:
        records = json.loads(file.read_text())
    except ValueError as error:
        raise ConfigurationError(
            f"{file} is not JSON ({error}): delete it, the demo writes it again"
        ) from None
    if not isinstance(records, dict):
        raise ConfigurationError(f"{file}: expected an object of universe path -> date; delete it")
    return records


def _iso_date(value: object, where: str) -> date:
    if isinstance(value, date):  # YAML reads an unquoted date as a date
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise ConfigurationError(f"{where} is not an ISO date (YYYY-MM-DD): {value!r}") from error
