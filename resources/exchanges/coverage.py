"""The coverage ledger: which ranges of which series were asked for and answered, and what is still missing.

A range is recorded after its rows are stored, with status `complete` (every expected candle came),
`partial` (some did) or `empty` (the exchange answered, with nothing). Without the ledger an exchange's
legitimately empty period (a listing that starts mid-day, a maintenance window) would look like a hole
and be fetched again on every run, forever. Adjacent ranges of one series are merged, so an intraday
schedule topping up every 15 minutes leaves one row per series and stretch, not 96 a day.

Missing = expected trading time (calendar) − covered ranges − stored candles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.exchanges.calendars import bars_with_data, expected_bars, utc
from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.models import Coverage, Ohlcv

Range = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class SeriesKey:
    """One series in the ledger: `interval` is the candle interval (or metric period), None for trades."""

    dataset: str
    exchange: str
    symbol: str
    interval: str | None = None

    def lock_name(self) -> str:
        return f"coverage:{self.dataset}:{self.exchange}:{self.symbol}:{self.interval or ''}"


def candle_key(exchange: str, symbol: str, interval: str, price: str = "trade") -> SeriesKey:
    """The ledger key of a candle series: traded-price candles under 'ohlcv' (as before price kinds
    existed, so existing ledgers stay valid), the other kinds under 'ohlcv:<price>'."""
    return SeriesKey("ohlcv" if price == "trade" else f"ohlcv:{price}", exchange, symbol, interval)


def status_of(rows: int, expected: int | None) -> str:
    """`empty` without rows; `complete` when every expected row came (or none is expected); else `partial`."""
    if rows == 0:
        return "empty"
    if expected is None or rows >= expected:
        return "complete"
    return "partial"


def _key_filter(key: SeriesKey):
    interval = Coverage.interval.is_(None) if key.interval is None else Coverage.interval == key.interval
    return sa.and_(
        Coverage.dataset == key.dataset,
        Coverage.exchange == key.exchange,
        Coverage.symbol == key.symbol,
        interval,
    )


def record_coverage(
    conn: sa.Connection,
    key: SeriesKey,
    start: datetime,
    end: datetime,
    *,
    rows: int,
    status: str,
    source: str,
    run_id: str | None = None,
) -> None:
    """Add `[start, end)` to the ledger in `conn`'s transaction, merging with adjacent or contained ranges.

    Overlapping ranges that stick out are kept as they are (the ledger is read as a union); ranges inside
    the new one are replaced by it, since they were asked again.
    """
    start_ts, end_ts = utc(start), utc(end)
    if end_ts <= start_ts:
        return
    # Serialize writers of one series so two runs cannot both miss each other's adjacent range.
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key.lock_name()))))
    contained = sa.and_(_key_filter(key), Coverage.range_start >= start_ts, Coverage.range_end <= end_ts)
    conn.execute(sa.delete(Coverage).where(contained))
    adjacent = conn.execute(
        sa.select(
            Coverage.id, Coverage.range_start, Coverage.range_end, Coverage.rows, Coverage.status
        ).where(_key_filter(key), sa.or_(Coverage.range_end == start_ts, Coverage.range_start == end_ts))
    ).all()
    statuses = {status, *(row.status for row in adjacent)}
    merged_status = statuses.pop() if len(statuses) == 1 else "partial"
    if adjacent:
        conn.execute(sa.delete(Coverage).where(Coverage.id.in_([row.id for row in adjacent])))
        start_ts = min([start_ts, *(utc(row.range_start) for row in adjacent)])
        end_ts = max([end_ts, *(utc(row.range_end) for row in adjacent)])
        rows += sum(row.rows for row in adjacent)
    conn.execute(
        sa.insert(Coverage).values(
            source=source,
            dataset=key.dataset,
            exchange=key.exchange,
            symbol=key.symbol,
            interval=key.interval,
            range_start=start_ts.to_pydatetime(),
            range_end=end_ts.to_pydatetime(),
            rows=rows,
            status=merged_status,
            run_id=run_id,
        )
    )


def covered_ranges(conn: sa.Connection, key: SeriesKey, start: datetime, end: datetime) -> list[Range]:
    """The ledger's union for `key`, clipped to `[start, end)`, as sorted disjoint ranges."""
    start_ts, end_ts = utc(start), utc(end)
    rows = conn.execute(
        sa.select(Coverage.range_start, Coverage.range_end)
        .where(_key_filter(key), Coverage.range_end > start_ts, Coverage.range_start < end_ts)
        .order_by(Coverage.range_start)
    ).all()
    return union((max(utc(r.range_start), start_ts), min(utc(r.range_end), end_ts)) for r in rows)


def union(ranges: Iterable[Range]) -> list[Range]:
    merged: list[list[pd.Timestamp]] = []
    for lo, hi in sorted(ranges):
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def subtract(start: datetime, end: datetime, covered: Sequence[Range]) -> list[Range]:
    """`[start, end)` minus the sorted disjoint `covered` ranges."""
    cursor, end_ts = utc(start), utc(end)
    holes: list[Range] = []
    for lo, hi in covered:
        if lo > cursor:
            holes.append((cursor, min(lo, end_ts)))
        cursor = max(cursor, hi)
        if cursor >= end_ts:
            break
    if cursor < end_ts:
        holes.append((cursor, end_ts))
    return [(lo, hi) for lo, hi in holes if hi > lo]


def uncovered_ranges(conn: sa.Connection, key: SeriesKey, start: datetime, end: datetime) -> list[Range]:
    """Parts of `[start, end)` never asked and answered (for series without a candle grid: trades)."""
    return subtract(start, end, covered_ranges(conn, key, start, end))


def bars_covered(bars: pd.IntervalIndex, covered: Sequence[Range]) -> np.ndarray:
    """Mask of `bars` lying entirely inside one of the sorted disjoint `covered` ranges."""
    if len(bars) == 0 or not covered:
        return np.zeros(len(bars), dtype=bool)
    starts = np.array([lo.value for lo, _ in covered], dtype=np.int64)
    ends = np.array([hi.value for _, hi in covered], dtype=np.int64)
    lefts = bars.left.as_unit("ns").asi8
    rights = bars.right.as_unit("ns").asi8
    index = np.searchsorted(starts, lefts, side="right") - 1
    inside = index >= 0
    return inside & (ends[np.maximum(index, 0)] >= rights)


def stored_candle_times(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    price: str = "trade",
) -> pd.DatetimeIndex:
    times = conn.execute(
        sa.select(Ohlcv.time)
        .where(
            Ohlcv.exchange == exchange,
            Ohlcv.symbol == symbol,
            Ohlcv.interval == interval,
            Ohlcv.price == price,
            Ohlcv.time >= utc(start),
            Ohlcv.time < utc(end),
        )
        .order_by(Ohlcv.time)
    ).scalars()
    return pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))


@dataclass(frozen=True)
class CandleGaps:
    """One candle series over a window: what the calendar expects, what is stored, answered-empty, missing."""

    exchange: str
    symbol: str
    interval: str
    calendar: str
    start: pd.Timestamp
    end: pd.Timestamp
    expected: int
    stored: int
    answered_empty: int
    missing: int
    ranges: tuple[tuple[pd.Timestamp, pd.Timestamp, int], ...]  # (start, end, candles) to fetch
    price: str = "trade"  # the candles' price kind


def candle_gaps(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    calendar: str,
    start: datetime,
    end: datetime,
    price: str = "trade",
) -> CandleGaps:
    """Missing candles of one series (one price kind) in `[start, end)`, as ranges of consecutive expected
    candles.

    Consecutive means consecutive in trading time: on an equity calendar a range may span a night or a
    weekend (asking for it costs nothing extra; the exchange has no candles there).
    """
    start_ts, end_ts = utc(start), utc(end)
    bars = expected_bars(calendar, interval, start_ts, end_ts)
    key = candle_key(exchange, symbol, interval, price)
    stored = bars_with_data(
        bars, stored_candle_times(conn, exchange, symbol, interval, start_ts, end_ts, price)
    )
    covered = bars_covered(bars, covered_ranges(conn, key, start_ts, end_ts))
    missing = ~stored & ~covered
    return CandleGaps(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        calendar=calendar,
        start=start_ts,
        end=end_ts,
        expected=len(bars),
        stored=int(stored.sum()),
        answered_empty=int((~stored & covered).sum()),
        missing=int(missing.sum()),
        ranges=tuple(_runs(bars, missing)),
        price=price,
    )


def _runs(bars: pd.IntervalIndex, mask: np.ndarray) -> Iterable[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Runs of consecutive True in `mask` as (first bar's open, last bar's close, count)."""
    if not mask.any():
        return
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.diff(padded)
    for first, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        yield bars.left[first], bars.right[stop - 1], int(stop - first)


@dataclass(frozen=True)
class FundingGaps:
    """Funding events of one perpetual over a window, against the schedule the exchange itself followed.

    There is no calendar of funding times (1h, 4h or 8h, varying per symbol and over time): each stored
    event carries the interval observed since the one before, and the next event is expected that long
    after it. A stretch longer than that, not answered empty by the exchange (the ledger), is a gap.
    """

    exchange: str
    symbol: str
    start: pd.Timestamp
    end: pd.Timestamp
    stored: int
    missing: int
    ranges: tuple[tuple[pd.Timestamp, pd.Timestamp, int], ...]  # (after this event, before that, events)


def funding_gaps(
    conn: sa.Connection, exchange: str, symbol: str, start: datetime, end: datetime
) -> FundingGaps:
    """Missing funding events of one series in `[start, end)` by its observed schedule (see FundingGaps);
    `end` is the time up to which events are due (the caller's settled now)."""
    from market_warehouse.resources.models import FundingRate  # the table exists from migration 0005 on

    start_ts, end_ts = utc(start), utc(end)
    series = sa.and_(FundingRate.exchange == exchange, FundingRate.symbol == symbol)
    before = (
        sa.select(FundingRate.time, FundingRate.interval)
        .where(series, FundingRate.time < start_ts)
        .order_by(FundingRate.time.desc())
        .limit(1)
    )
    inside = (
        sa.select(FundingRate.time, FundingRate.interval)
        .where(series, FundingRate.time >= start_ts, FundingRate.time < end_ts)
        .order_by(FundingRate.time)
    )
    events = [*conn.execute(before).all(), *conn.execute(inside).all()]
    covered = covered_ranges(conn, SeriesKey("funding_rates", exchange, symbol), start_ts, end_ts)
    ranges = []
    followers = [e.time for e in events[1:]] + [None] * bool(events)  # the next event; None after the last
    for (time, interval), following in zip(events, followers, strict=True):
        if interval is None:
            continue  # the first event ever seen: no schedule observed yet
        step, at = pd.Timedelta(interval_to_timedelta(interval)), utc(time)
        # Events due after `at` before the next one (rounded: exchanges stamp a few ms late), or before `end`.
        if following is None:
            due, until = int(np.ceil((end_ts - at) / step)) - 1, end_ts
        else:
            due, until = round((utc(following) - at) / step) - 1, utc(following)
        if due > 0 and subtract(max(at + step / 2, start_ts), min(until, end_ts), covered):
            ranges.append((at, until, due))
    stored = sum(1 for e in events if utc(e.time) >= start_ts)
    return FundingGaps(exchange, symbol, start_ts, end_ts, stored, sum(n for *_, n in ranges), tuple(ranges))
