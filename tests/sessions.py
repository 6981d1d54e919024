"""XNYS sessions straight from exchange_calendars, for tests to check the calendar-aware code against an
independent computation (not through `resources.exchanges.calendars`)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000


class Sessions:
    """Sessions of one exchange_calendars calendar between two dates, as millisecond arrays."""

    def __init__(self, start: str, end: str, code: str = "XNYS"):
        import exchange_calendars

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            schedule = exchange_calendars.get_calendar(code, start=start, end=end).schedule
        self.dates = {d.date() for d in schedule.index}
        self.opens = pd.DatetimeIndex(schedule["open"]).as_unit("ms").asi8
        self.closes = pd.DatetimeIndex(schedule["close"]).as_unit("ms").asi8

    def trading(self, lefts: np.ndarray, step_ms: int, now_ms: int) -> np.ndarray:
        """Candles `[left, left + step)` that overlap a session in a part already begun at `now_ms` (the
        13:00 UTC candle of a 13:30 open has no trade before 13:30)."""
        i = np.maximum(np.searchsorted(self.opens, lefts + step_ms, side="left") - 1, 0)
        begun = np.maximum(lefts, self.opens[i]) <= now_ms
        return (self.opens[i] < lefts + step_ms) & (self.closes[i] > lefts) & begun

    def holding(self, stamps: np.ndarray) -> np.ndarray:
        """Instants inside a session."""
        i = np.searchsorted(self.opens, stamps, side="right") - 1
        return (i >= 0) & (stamps < self.closes[np.maximum(i, 0)])


def expected_lefts(calendar: str, sessions: Sessions, step_ms: int, since: int, now_ms: int) -> list[int]:
    """Open times (ms) of the grid candles a market has begun by `now_ms`, from `since` (rounded up to the
    grid): every step on 24/7, those trading in a session otherwise."""
    lefts = np.arange(-(-since // step_ms) * step_ms, now_ms + 1, step_ms, dtype=np.int64)
    return (lefts if calendar == "24/7" else lefts[sessions.trading(lefts, step_ms, now_ms)]).tolist()
