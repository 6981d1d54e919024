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

from resources.intervals import interval_to_timedelta

TWENTY_FOUR_SEVEN = "24/7"
_EPOCH = pd.Timestamp(0, tz="UTC")
_FIRST_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")
_DAY = timedelta(days=1)


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
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads `Series.values` of tz-aware columns, deprecated by pandas 3.1.
        warnings.filterwarnings(
            "ignore", message="Series.values returning an ndarray", category=DeprecationWarning
        )
        return exchange_calendars.get_calendar(code)


def expected_bars(calendar: str, interval: str, start: datetime, end: datetime) -> pd.IntervalIndex:
    """Candles `[open, close)` of `interval` a market on `calendar` has with open in `[start, end)`."""
    start, end = utc(start), utc(end)
    if end <= start:
        return _intervals(pd.DatetimeIndex([], tz=UTC), pd.DatetimeIndex([], tz=UTC))
    step = pd.Timedelta(interval_to_timedelta(interval))
    if calendar == TWENTY_FOUR_SEVEN:
        lefts = pd.date_range(ceil_time(start, interval), end, freq=step, inclusive="left")
        return _intervals(lefts, lefts + step)
    cal = exchange_calendar(calendar)
    if step == pd.Timedelta(_DAY):
        return _sessions(cal, start, end)
    if step > pd.Timedelta(_DAY):
        raise ValueError(f"interval {interval} is longer than a session: no bar grid for calendar {calendar}")
    opens, closes = _session_bounds(cal, start - pd.Timedelta(_DAY), end + pd.Timedelta(_DAY))
    lefts = []
    for open_, close in zip(opens, closes, strict=True):
        first = floor_time(open_, interval)
        lefts.append(pd.date_range(first, close, freq=step, inclusive="left"))
    if not lefts:
        return _intervals(pd.DatetimeIndex([], tz=UTC), pd.DatetimeIndex([], tz=UTC))
    index = pd.DatetimeIndex(np.unique(np.concatenate([x.as_unit("ns").asi8 for x in lefts]))).tz_localize(
        UTC
    )
    index = index[(index >= start) & (index < end)]
    return _intervals(index, index + step)


def trading_spans(calendar: str, bars: pd.IntervalIndex) -> tuple[np.ndarray, np.ndarray]:
    """Nanosecond `[start, end)` of each candle's trading time (the candle itself on a 24/7 market)."""
    starts, ends = bars.left.as_unit("ns").asi8.copy(), bars.right.as_unit("ns").asi8.copy()
    if calendar == TWENTY_FOUR_SEVEN or len(bars) == 0:
        return starts, ends
    cal = exchange_calendar(calendar)
    opens, closes = _session_bounds(
        cal, bars.left[0] - pd.Timedelta(_DAY), bars.right[-1] + pd.Timedelta(_DAY)
    )
    open_ns = opens.as_unit("ns").asi8
    close_ns = closes.as_unit("ns").asi8
    # The session of a candle is the last one opening before the candle ends.
    index = np.searchsorted(open_ns, ends, side="left") - 1
    valid = index >= 0
    session_open = np.where(valid, open_ns[np.maximum(index, 0)], starts)
    session_close = np.where(valid, close_ns[np.maximum(index, 0)], ends)
    return np.maximum(starts, session_open), np.minimum(ends, session_close)


def _session_bounds(cal, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Open and close (UTC) of the sessions whose dates fall in `[start, end]`, within the calendar's bounds."""
    first = max(start.normalize().tz_localize(None), cal.first_session)
    last = min(end.normalize().tz_localize(None), cal.last_session)
    if last < first:
        empty = pd.DatetimeIndex([], tz=UTC)
        return empty, empty
    schedule = cal.schedule.loc[first:last]
    return pd.DatetimeIndex(schedule["open"]).tz_convert(UTC), pd.DatetimeIndex(schedule["close"]).tz_convert(
        UTC
    )


def _sessions(cal, start: pd.Timestamp, end: pd.Timestamp) -> pd.IntervalIndex:
    lo = max(start.normalize(), cal.first_session.tz_localize(UTC))
    hi = min(end, cal.last_session.tz_localize(UTC) + _DAY)
    if hi <= lo:
        return _intervals(pd.DatetimeIndex([], tz=UTC), pd.DatetimeIndex([], tz=UTC))
    last = (hi - pd.Timedelta(1)).normalize()
    sessions = cal.sessions_in_range(lo.normalize().tz_localize(None), last.tz_localize(None))
    lefts = pd.DatetimeIndex(sessions).tz_localize(UTC)
    lefts = lefts[(lefts >= start) & (lefts < end)]
    return _intervals(lefts, lefts + _DAY)


def _intervals(lefts: pd.DatetimeIndex, rights: pd.DatetimeIndex) -> pd.IntervalIndex:
    return pd.IntervalIndex.from_arrays(
        pd.DatetimeIndex(lefts).as_unit("ns"), pd.DatetimeIndex(rights).as_unit("ns"), closed="left"
    )


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
