"""Hourly and daily OHLCV aggregates (`ohlcv_1h`, `ohlcv_1d`), refreshed where the data changed.

The upsert records every hour bucket it inserted or changed in `aggregate_dirty_windows`; the refresh turns
that log into bucket windows and rebuilds only those:

- TimescaleDB (full license): continuous aggregates, `ohlcv_1d` built on `ohlcv_1h`, materialized only,
  without a refresh policy. `refresh_continuous_aggregate` runs per window on an AUTOCOMMIT connection
  (it cannot run in a transaction); the log entries are forgotten afterwards, only in the version read.
- TimescaleDB Apache-only and plain PostgreSQL: rollup tables (views `ohlcv_1h` / `ohlcv_1d` on
  `mw_aggregates.*`) rebuilt per window by DELETE + INSERT … GROUP BY, the hours from the 1m candles and then
  the days containing them from the hours. Claiming the log, rebuilding and committing is one transaction
  per batch, so a failure leaves the claimed buckets pending.

Only '1m' candles are aggregated: one source interval per series, so a series stored at 1m and at 5m is
not counted twice. The aggregates' key is (exchange, symbol, bucket): the source interval is not in it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from market_warehouse.resources.backend import Capabilities, engine_capabilities
from market_warehouse.resources.sqlfiles import sql_text

SOURCE_INTERVAL = "1m"
DIRTY_TABLE = "ohlcv"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Buckets claimed per transaction, and the longest window rebuilt by one statement: bounded work per step.
BATCH_HOURS = 31 * 24
MAX_WINDOW = timedelta(days=31)

Window = tuple[datetime, datetime]


@dataclass
class RefreshResult:
    """What one refresh did; `rows_*` are the buckets rewritten (None where TimescaleDB decides)."""

    mode: str
    dirty_hours: int = 0
    hour_windows: list[Window] = field(default_factory=list)
    day_windows: list[Window] = field(default_factory=list)
    rows_1h: int | None = 0
    rows_1d: int | None = 0
    seconds: float = 0.0

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {
            "mode": self.mode,
            "dirty_hours": self.dirty_hours,
            "hour_windows": len(self.hour_windows),
            "day_windows": len(self.day_windows),
            "seconds": round(self.seconds, 3),
        }
        if self.rows_1h is not None:
            out["rows_1h_rebuilt"] = self.rows_1h
            out["rows_1d_rebuilt"] = self.rows_1d
        if self.hour_windows:
            out["oldest_bucket"] = self.hour_windows[0][0].isoformat()
            out["newest_bucket"] = self.hour_windows[-1][1].isoformat()
        return out


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """Start of the UTC bucket of `step` (an hour or a day) containing `ts`."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((ts.astimezone(UTC) - epoch) // step) * step


def windows(starts: Iterable[datetime], step: timedelta, longest: timedelta = MAX_WINDOW) -> list[Window]:
    """Contiguous runs of bucket starts as [start, end) windows, each at most `longest` long."""
    runs: list[Window] = []
    for start in sorted({floor_to(s, step) for s in starts}):
        if runs and runs[-1][1] == start and start + step - runs[-1][0] <= longest:
            runs[-1] = (runs[-1][0], start + step)
        else:
            runs.append((start, start + step))
    return runs


CONTINUOUS = "continuous aggregates"
ROLLUPS = "rollup tables"


def refresh_aggregates(engine: sa.Engine, caps: Capabilities | None = None) -> RefreshResult:
    """Rebuild the buckets of every pending dirty hour; a no-op when nothing changed since the last run."""
    caps = engine_capabilities(engine, caps)
    began = time.perf_counter()
    result = _refresh_continuous(engine) if caps.continuous_aggregates else _refresh_rollups(engine)
    result.seconds = time.perf_counter() - began
    return result


def plan_refresh(conn: sa.Connection, caps: Capabilities) -> RefreshResult:
    """The windows the next refresh would rebuild (pending dirty hours), read without consuming the log.

    Windows are merged over all pending hours; the refresh itself works in batches of `BATCH_HOURS`, so a
    very long backlog may be rebuilt in a few more, shorter windows. Row counts are not predicted (None).
    """
    pending = conn.execute(sql_text("common/aggregate_dirty_pending"), {"table_name": DIRTY_TABLE}).all()
    hours = sorted({floor_to(bucket, HOUR) for bucket, _ in pending})
    return RefreshResult(
        mode=CONTINUOUS if caps.continuous_aggregates else ROLLUPS,
        dirty_hours=len(hours),
        hour_windows=windows(hours, HOUR),
        day_windows=windows(hours, DAY),
        rows_1h=None,
        rows_1d=None,
    )


def _refresh_rollups(engine: sa.Engine) -> RefreshResult:
    result = RefreshResult(mode=ROLLUPS)
    while True:
        with engine.begin() as conn:
            conn.execute(sql_text("common/aggregate_refresh_lock"), {"table_name": DIRTY_TABLE})
            claimed = conn.execute(
                sql_text("common/aggregate_dirty_claim"),
                {"table_name": DIRTY_TABLE, "batch_hours": BATCH_HOURS},
            ).scalars()
            hours = list(claimed)
            if not hours:
                break
            hour_windows = windows(hours, HOUR)
            day_windows = windows(hours, DAY)
            for start, end in hour_windows:
                params = {"start": start, "end": end}
                conn.execute(sql_text("common/ohlcv_rollup_1h_delete"), params)
                result.rows_1h += conn.execute(sql_text("common/ohlcv_rollup_1h_insert"), params).rowcount
            for start, end in day_windows:
                params = {"start": start, "end": end}
                conn.execute(sql_text("common/ohlcv_rollup_1d_delete"), params)
                result.rows_1d += conn.execute(sql_text("common/ohlcv_rollup_1d_insert"), params).rowcount
        result.dirty_hours += len(set(hours))
        result.hour_windows.extend(hour_windows)
        result.day_windows.extend(day_windows)
        if len(hours) < BATCH_HOURS:
            break
    result.hour_windows.sort()
    result.day_windows.sort()
    return result


def _refresh_continuous(engine: sa.Engine) -> RefreshResult:
    result = RefreshResult(mode=CONTINUOUS, rows_1h=None, rows_1d=None)
    with engine.connect() as conn:
        pending = conn.execute(sql_text("common/aggregate_dirty_pending"), {"table_name": DIRTY_TABLE}).all()
    if not pending:
        return result
    by_hour: dict[datetime, list[tuple[datetime, datetime]]] = {}
    for bucket_start, recorded_at in pending:
        by_hour.setdefault(floor_to(bucket_start, HOUR), []).append((bucket_start, recorded_at))
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    hours = sorted(by_hour)
    for first in range(0, len(hours), BATCH_HOURS):
        batch = hours[first : first + BATCH_HOURS]
        hour_windows = windows(batch, HOUR)
        day_windows = windows(batch, DAY)
        with autocommit.connect() as conn:
            for view, runs in (("ohlcv_1h", hour_windows), ("ohlcv_1d", day_windows)):
                for start, end in runs:
                    conn.execute(
                        sql_text("timescaledb/refresh_continuous_aggregate"),
                        {"view_name": view, "start": start, "end": end},
                    )
            entries = [entry for hour in batch for entry in by_hour[hour]]
            conn.execute(
                sql_text("common/aggregate_dirty_forget"),
                {
                    "table_name": DIRTY_TABLE,
                    "buckets": [bucket for bucket, _ in entries],
                    "recorded": [recorded for _, recorded in entries],
                },
            )
        result.dirty_hours += len(batch)
        result.hour_windows.extend(hour_windows)
        result.day_windows.extend(day_windows)
    return result


def pending_buckets(conn: sa.Connection, start: datetime, end: datetime) -> int:
    """Dirty (not yet aggregated) hours of ohlcv within [start, end): raw data retention must keep."""
    return conn.execute(
        sql_text("common/aggregate_dirty_count"), {"table_name": DIRTY_TABLE, "start": start, "end": end}
    ).scalar_one()
