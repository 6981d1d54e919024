"""What the demo is asked (`DemoOptions`) and what it did (`DemoReport`), shared by its modules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

Echo = Callable[[str], None]

DEMO_FOLDER = "demo"  # under the landing folder: the demo's files never mix with a user's

AGGREGATE_TABLES = ("ohlcv_1h", "ohlcv_1d")


@dataclass
class DemoOptions:
    days: int = 3  # complete UTC days of the window
    history_days: int = 7  # landed files cover this many days before the window
    universe: str | None = None  # universe YAML (default: MW_UNIVERSE, else the shipped synthetic one)
    end: date | None = None  # the window's last UTC day (default: yesterday by the clock)
    quiet: bool = False  # no per-step progress lines


@dataclass
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    severity: str
    description: str
    partition: str | None = None  # the day a partitioned check evaluated (one outcome per day of a range)


@dataclass
class StepFailure:
    """A failed step and its root error (type, message, where raised), not Dagster's wrapper message."""

    step: str
    error: str  # e.g. "IndexError: index -1 is out of bounds … (at resources/exchanges/synthetic.py:88)"


@dataclass
class DemoReport:
    """What the demo did: the data it wrote, what it rejected, what the checks said."""

    window: tuple[str, str]
    runs: dict[str, bool] = field(default_factory=dict)  # run id -> success
    files_written: int = 0
    files_unchanged: int = 0
    rows_written: Counter = field(default_factory=Counter)  # asset -> rows inserted + updated this run
    checks: list[CheckOutcome] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    quarantine: list[tuple[str, str, str, int]] = field(default_factory=list)  # table, rule, source, rows
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    capabilities: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return all(self.runs.values())

    @property
    def total_written(self) -> int:
        return sum(self.rows_written.values())
