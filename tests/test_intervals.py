"""Interval strings: the ccxt notation, their durations, and what PostgreSQL makes of our literals."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from market_warehouse.resources.intervals import (
    IntervalError,
    interval_to_pg_interval,
    interval_to_timedelta,
    is_fixed,
    parse_interval,
    timedelta_to_pg_interval,
    validate_interval,
)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("1m", timedelta(minutes=1)),
        ("5m", timedelta(minutes=5)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("4h", timedelta(hours=4)),
        ("12h", timedelta(hours=12)),
        ("1d", timedelta(days=1)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_interval_to_timedelta(interval, expected):
    assert interval_to_timedelta(interval) == expected
    assert validate_interval(interval) == interval
    assert is_fixed(interval)


@pytest.mark.parametrize("bad", ["", "m", "0m", "-1m", "1.5h", "1 h", "1H", "1min", "h1", "01x", None, 5])
def test_invalid_intervals_name_the_accepted_form(bad):
    with pytest.raises(IntervalError, match="expected a positive integer and a unit"):
        parse_interval(bad)


def test_minute_and_month_are_told_apart():
    assert parse_interval("1m") == (1, "m")
    assert parse_interval("1M") == (1, "M")
    assert not is_fixed("1M")
    with pytest.raises(IntervalError, match="calendar month"):
        interval_to_timedelta("1M")
    with pytest.raises(IntervalError, match="calendar year"):
        interval_to_timedelta("1y")


@pytest.mark.parametrize(
    ("delta", "literal"),
    [
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=5), "5 minutes"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(hours=4), "4 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=14), "2 weeks"),
        (timedelta(seconds=61), "61 seconds"),
        (timedelta(milliseconds=1500), "1500000 microseconds"),
    ],
)
def test_timedelta_to_pg_interval(delta, literal):
    assert timedelta_to_pg_interval(delta) == literal


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(minutes=-5)])
def test_non_positive_durations_are_refused(delta):
    with pytest.raises(IntervalError, match="positive"):
        timedelta_to_pg_interval(delta)


def test_interval_to_pg_interval_covers_calendar_units():
    assert interval_to_pg_interval("4h") == "4 hours"
    assert interval_to_pg_interval("1M") == "1 month"
    assert interval_to_pg_interval("3M") == "3 months"
    assert interval_to_pg_interval("1y") == "1 year"


def test_postgres_reads_our_literals_as_the_same_durations(engine):
    intervals = ["1s", "1m", "5m", "90m", "1h", "4h", "1d", "3d", "1w", "2w"]
    with engine.connect() as conn:
        for interval in intervals:
            seconds = conn.execute(
                sa.text("SELECT extract(epoch FROM CAST(:i AS interval))"),
                {"i": interval_to_pg_interval(interval)},
            ).scalar_one()
            assert float(seconds) == interval_to_timedelta(interval).total_seconds(), interval
        month_end = conn.execute(
            sa.text("SELECT (timestamptz '2024-01-31 00:00+00' + CAST(:i AS interval)) AT TIME ZONE 'UTC'"),
            {"i": interval_to_pg_interval("1M")},
        ).scalar_one()
    assert month_end.isoformat() == "2024-02-29T00:00:00"  # a calendar month, clamped to the month's end
