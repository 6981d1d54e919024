"""Candle interval strings ('1m', '5m', '1h', '4h', '1d', '1w', '1M') and their durations.

One place for the ccxt timeframe notation, so the exchange pulls, the gap report, the aggregates and the
retention policy agree on what '1h' means. Units are case-sensitive as in ccxt: `m` is a minute, `M` a
calendar month. A month has no fixed length, so it has a PostgreSQL interval ('1 month') but no timedelta.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PATTERN = re.compile(r"^([1-9][0-9]*)([smhdwMy])$")

_FIXED_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_CALENDAR_UNITS = {"M": "month", "y": "year"}

# Largest unit first, so a duration is written in the largest unit dividing it exactly.
_PG_UNITS = (
    ("week", timedelta(weeks=1)),
    ("day", timedelta(days=1)),
    ("hour", timedelta(hours=1)),
    ("minute", timedelta(minutes=1)),
    ("second", timedelta(seconds=1)),
    ("microsecond", timedelta(microseconds=1)),
)


class IntervalError(ValueError):
    """An interval string that is not '<positive integer><unit>' with a known unit."""


def parse_interval(interval: str) -> tuple[int, str]:
    """Split '15m' into (15, 'm'), refusing anything else with the accepted form in the message."""
    match = _PATTERN.match(interval) if isinstance(interval, str) else None
    if match is None:
        raise IntervalError(
            f"invalid interval {interval!r}: expected a positive integer and a unit "
            "(s, m, h, d, w, M for month, y), e.g. '1m', '4h', '1d'"
        )
    return int(match.group(1)), match.group(2)


def validate_interval(interval: str) -> str:
    """Return `interval` unchanged if it is valid, else raise `IntervalError`."""
    parse_interval(interval)
    return interval


def is_fixed(interval: str) -> bool:
    """True when the interval has a fixed duration (everything but months and years)."""
    return parse_interval(interval)[1] in _FIXED_UNITS


def interval_to_timedelta(interval: str) -> timedelta:
    """'4h' -> timedelta(hours=4); months and years have no fixed length and raise."""
    count, unit = parse_interval(interval)
    if unit not in _FIXED_UNITS:
        raise IntervalError(
            f"interval {interval!r} is a calendar {_CALENDAR_UNITS[unit]}, which has no fixed duration; "
            "use interval_to_pg_interval for SQL"
        )
    return count * _FIXED_UNITS[unit]


def timedelta_to_pg_interval(delta: timedelta) -> str:
    """A PostgreSQL interval literal for a positive duration, in the largest exact unit: '4 hours'."""
    if delta <= timedelta(0):
        raise IntervalError(f"an interval must be positive, not {delta}")
    for name, unit in _PG_UNITS:
        if delta % unit == timedelta(0):
            count = delta // unit
            return f"{count} {name}{'s' if count != 1 else ''}"
    raise AssertionError("unreachable: every timedelta is a whole number of microseconds")


def interval_to_pg_interval(interval: str) -> str:
    """'4h' -> '4 hours', '1M' -> '1 month': usable as `CAST(:step AS interval)` for any unit."""
    count, unit = parse_interval(interval)
    if unit in _CALENDAR_UNITS:
        name = _CALENDAR_UNITS[unit]
        return f"{count} {name}{'s' if count != 1 else ''}"
    return timedelta_to_pg_interval(count * _FIXED_UNITS[unit])
