"""The demo's window of UTC days and the instant its pinned clock shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from market_warehouse.pipelines.history import demo_window_days
from market_warehouse.pipelines.partitions import DAILY

# The demo runs 5 minutes into the day after its window: every candle of the last day is closed and past
# the default `settle` (2m), so the coverage ledger records the window as answered, and the day after has
# barely begun (its few minutes are not in the window and not pulled).
DEMO_CLOCK_AFTER_END = timedelta(days=1, minutes=5)


def demo_window(days: int, end: date | None = None) -> tuple[str, str]:
    """First and last partition key of the `days` UTC days ending with `end` (default: yesterday by the
    clock, the last complete day); refused when it starts before this process's first partition (the
    demo's command line first records its window as the home's history start, see `pipelines.history`)."""
    first, last = demo_window_days(days, end)
    if first < DAILY.start.date():
        raise ValueError(f"the window starts {first}, before the first partition {DAILY.start.date()}")
    return first.isoformat(), last.isoformat()


def demo_instant(window_end: str) -> datetime:
    """The instant the demo runs at: `DEMO_CLOCK_AFTER_END` after the start of the window's last day."""
    return datetime.fromisoformat(window_end).replace(tzinfo=UTC) + DEMO_CLOCK_AFTER_END
