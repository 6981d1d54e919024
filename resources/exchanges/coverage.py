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

from resources.exchanges.calendars import bars_with_data, expected_bars, utc
from resources.models import Coverage, Ohlcv

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
    conn: sa.Connection, exchange: str, symbol: str, interval: str, start: datetime, end: datetime
) -> pd.DatetimeIndex:
    times = conn.execute(
        sa.select(Ohlcv.time)
        .where(
            Ohlcv.exchange == exchange,
            Ohlcv.symbol == symbol,
            Ohlcv.interval == interval,
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


def candle_gaps(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    calendar: str,
    start: datetime,
    end: datetime,
) -> CandleGaps:
    """Missing candles of one series in `[start, end)`, as ranges of consecutive expected candles.

    Consecutive means consecutive in trading time: on an equity calendar a range may span a night or a
    weekend (asking for it costs nothing extra; the exchange has no candles there).
    """
    start_ts, end_ts = utc(start), utc(end)
    bars = expected_bars(calendar, interval, start_ts, end_ts)
    key = SeriesKey("ohlcv", exchange, symbol, interval)
    stored = bars_with_data(bars, stored_candle_times(conn, exchange, symbol, interval, start_ts, end_ts))
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
    )


def _runs(bars: pd.IntervalIndex, mask: np.ndarray) -> Iterable[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Runs of consecutive True in `mask` as (first bar's open, last bar's close, count)."""
    if not mask.any():
        return
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.diff(padded)
    for first, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        yield bars.left[first], bars.right[stop - 1], int(stop - first)
