"""Which candles a market is expected to have: 24/7 for crypto, exchange sessions for equities.

Sessions, holidays, early closes and weekends come from `exchange_calendars`; this module only turns them
into candle intervals. Candles are aligned to the UTC epoch grid whatever the market (weeks start on
Monday), as ccxt exchanges and the warehouse's rollups and quality rules expect: for an equity market the
expected candles are the grid intervals that overlap a session (the first and last of a session may be
partial, e.g. XNYS 1h candles at 13:00 (13:30-14:00), 14:00, ... 20:00 UTC in winter), and a daily candle
is labelled with its session date at 00:00 UTC. `trading_spans` gives the part of each candle inside its
session, which is what an equity candle aggregates.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pandas as pd

from market_warehouse.resources.intervals import interval_to_timedelta

TWENTY_FOUR_SEVEN = "24/7"
_EPOCH = pd.Timestamp(0, tz="UTC")
_FIRST_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")
_DAY = timedelta(days=1)
# Sessions known to every equity calendar (holiday rules projected forward past the published years).
CALENDAR_SPAN = (pd.Timestamp("1970-01-01"), pd.Timestamp("2100-12-31"))


def utc(value: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive input is refused rather than guessed."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}: pass a timezone-aware (UTC) time")
    return stamp.tz_convert(UTC)


def floor_time(value: datetime | pd.Timestamp, interval: str) -> pd.Timestamp:
    """Start of the epoch-aligned (weeks: Monday-aligned) candle containing `value`."""
    step = pd.Timedelta(interval_to_timedelta(interval))
    origin = _FIRST_MONDAY if step % pd.Timedelta(weeks=1) == pd.Timedelta(0) else _EPOCH
    stamp = utc(value)
    return origin + ((stamp - origin) // step) * step


def ceil_time(value: datetime | pd.Timestamp, interval: str) -> pd.Timestamp:
    floor = floor_time(value, interval)
    return floor if floor == utc(value) else floor + pd.Timedelta(interval_to_timedelta(interval))


@cache
def exchange_calendar(code: str):
    """The calendar over `CALENDAR_SPAN` (clamped to what the calendar supports).

    Not exchange_calendars' default span (20 years before to one year after the system date): which
    sessions exist must not depend on the day the process runs. With the default, a clock pinned to
    2028-02-29 found no session at all on a machine dated 2026, and a process running past its first
    year would stop seeing future sessions.
    """
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads `Series.values` of tz-aware columns, deprecated by pandas 3.1.
        warnings.filterwarnings(
            "ignore", message="Series.values returning an ndarray", category=DeprecationWarning
        )
        kind = type(exchange_calendars.get_calendar(code))
        lowest, highest = kind.bound_min(), kind.bound_max()
        start = CALENDAR_SPAN[0] if lowest is None else max(CALENDAR_SPAN[0], lowest)
        end = CALENDAR_SPAN[1] if highest is None else min(CALENDAR_SPAN[1], highest)
        return exchange_calendars.get_calendar(code, start=start, end=end)


def expected_bars(calendar: str, interval: str, start: datetime, end: datetime) -> pd.IntervalIndex:
    """Candles `[open, close)` of `interval` a market on `calendar` has with open in `[start, end)`."""
    start, end = utc(start), utc(end)
    if end <= start:
        return _intervals(np.zeros(0, np.int64), 0)
    step = pd.Timedelta(interval_to_timedelta(interval))
    if calendar == TWENTY_FOUR_SEVEN:
        lefts = pd.date_range(ceil_time(start, interval), end, freq=step, inclusive="left")
        return _intervals(lefts.as_unit("ns").asi8, step.value)
    if step == pd.Timedelta(_DAY):
        dates = _schedule(calendar)[0]
        lefts = dates[np.searchsorted(dates, start.value) : np.searchsorted(dates, end.value)]
        return _intervals(lefts, step.value)
    if step > pd.Timedelta(_DAY):
        raise ValueError(f"interval {interval} is longer than a session: no bar grid for calendar {calendar}")
    opens, closes = _session_bounds(calendar, start - _DAY, end + _DAY)
    # Every grid candle from the one holding each session's open up to its close (epoch-aligned: an
    # intraday step divides a day), merged across sessions.
    firsts = opens - opens % step.value
    counts = -(-(closes - firsts) // step.value)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    lefts = np.unique(np.repeat(firsts, counts) + offsets * step.value)
    return _intervals(lefts[(lefts >= start.value) & (lefts < end.value)], step.value)


def trading_spans(calendar: str, bars: pd.IntervalIndex) -> tuple[np.ndarray, np.ndarray]:
    """Nanosecond `[start, end)` of each candle's trading time (the candle itself on a 24/7 market)."""
    starts, ends = bars.left.as_unit("ns").asi8.copy(), bars.right.as_unit("ns").asi8.copy()
    if calendar == TWENTY_FOUR_SEVEN or len(bars) == 0:
        return starts, ends
    open_ns, close_ns = _session_bounds(calendar, bars.left[0] - _DAY, bars.right[-1] + _DAY)
    if len(open_ns) == 0:  # no session near these candles (outside the calendar's span)
        return starts, ends
    # The session of a candle is the last one opening before the candle ends.
    index = np.searchsorted(open_ns, ends, side="left") - 1
    valid = index >= 0
    session_open = np.where(valid, open_ns[np.maximum(index, 0)], starts)
    session_close = np.where(valid, close_ns[np.maximum(index, 0)], ends)
    return np.maximum(starts, session_open), np.minimum(ends, session_close)


def last_trading_instant(calendar: str, at: datetime | pd.Timestamp) -> pd.Timestamp | None:
    """`at` when the market trades then (always on 24/7); else the close of the last session before `at`
    (what a quote "as of" a weekend or holiday shows); None when no session opened before `at`."""
    at = utc(at)
    if calendar == TWENTY_FOUR_SEVEN:
        return at
    # 30 days back covers the longest closures (2001-09-11: six days); a session may open the day before
    # its date (CME), hence the day after `at`.
    opens, closes = _session_bounds(calendar, at - 30 * _DAY, at + _DAY)
    index = int(np.searchsorted(opens, at.value, side="right")) - 1
    if index < 0:
        return None
    return min(at, pd.Timestamp(int(closes[index]), tz=UTC))


@cache
def _schedule(calendar: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session dates (00:00 UTC), opens and closes of `calendar` as sorted int64 nanoseconds: the lookups
    above are binary searches on these instead of pandas slicing (a candle grid is asked for often)."""
    schedule = exchange_calendar(calendar).schedule
    dates = pd.DatetimeIndex(schedule.index).as_unit("ns").asi8
    opens = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
    return dates, opens, closes


def _session_bounds(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (ns UTC) of the sessions whose dates fall in `[start, end]` (days, both included),
    within the calendar's span."""
    dates, opens, closes = _schedule(calendar)
    lo = np.searchsorted(dates, start.normalize().value, side="left")
    hi = np.searchsorted(dates, end.normalize().value, side="right")
    return opens[lo:hi], closes[lo:hi]


def _intervals(lefts: np.ndarray, step_ns: int) -> pd.IntervalIndex:
    """`[left, left + step)` candles from int64 nanosecond lefts."""
    index = pd.DatetimeIndex(np.asarray(lefts, dtype="int64").view("M8[ns]")).tz_localize(UTC)
    return pd.IntervalIndex.from_arrays(index, index + pd.Timedelta(step_ns), closed="left")


def bars_with_data(bars: pd.IntervalIndex, times: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Boolean mask of `bars` holding at least one of `times` (a candle however the source aligns it)."""
    if len(bars) == 0:
        return np.zeros(0, dtype=bool)
    stamps = np.sort(pd.DatetimeIndex(times).as_unit("ns").asi8) if len(times) else np.zeros(0, np.int64)
    lefts = bars.left.as_unit("ns").asi8
    rights = bars.right.as_unit("ns").asi8
    first_at_or_after = np.searchsorted(stamps, lefts, side="left")
    first_at_or_after_right = np.searchsorted(stamps, rights, side="left")
    return first_at_or_after_right > first_at_or_after
