"""What the capture service writes besides market data: holes, heartbeats, events and earned coverage.

Every disconnect (or restart) of a stream opens a `capture_gaps` row and a `system_events` warning; the
reconnect closes it with the hole's end and what the REST back-fill made of it (an info event). Each flush
upserts the `stream_state` heartbeat of the streams it wrote, and adds the stretch of exchange time the
stream has seen whole to the coverage ledger, so the scheduled REST pulls skip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from market_warehouse.resources import clock
from market_warehouse.resources.exchanges.coverage import SeriesKey, record_coverage
from market_warehouse.resources.models.stream import CaptureGap, StreamState
from market_warehouse.resources.warehouse.ops.operations import log_event

SOURCE = "stream"


def open_gap(
    engine: sa.Engine, exchange: str, symbol: str, channel: str, reason: str, start: datetime, error: str
) -> int:
    """Record that the stream lost `channel` of `symbol` after `start` (exchange time); returns the gap id."""
    with engine.begin() as conn:
        gap_id = conn.execute(
            sa.insert(CaptureGap)
            .values(
                exchange=exchange,
                symbol=symbol,
                channel=channel,
                reason=reason,
                gap_start=start,
                status="open",
                detail={"error": error},
            )
            .returning(CaptureGap.id)
        ).scalar_one()
        log_event(
            conn,
            "warning",
            SOURCE,
            f"stream_{reason}",
            f"{exchange} {symbol} {channel}: stream lost after {start.isoformat()} ({error})",
            component=exchange,
            details={"gap_id": gap_id, "symbol": symbol, "channel": channel, "error": error},
        )
    return gap_id


def close_gap(
    engine: sa.Engine,
    gap_id: int,
    end: datetime,
    status: str,
    rows: int = 0,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Close gap `gap_id` at `end` (the first exchange time seen again) with its back-fill outcome."""
    with engine.begin() as conn:
        gap = conn.execute(
            sa.update(CaptureGap)
            .where(CaptureGap.id == gap_id)
            .values(
                gap_end=sa.func.greatest(CaptureGap.gap_start, end),
                status=status,
                filled=status == "filled",
                rows_filled=rows,
                detail=CaptureGap.detail.op("||")(sa.cast(dict(detail or {}), CaptureGap.detail.type)),
                closed_at=clock.now(),
            )
            .returning(CaptureGap.exchange, CaptureGap.symbol, CaptureGap.channel, CaptureGap.gap_start)
        ).one()
        log_event(
            conn,
            "info" if status in ("filled", "unfillable") else "warning",
            SOURCE,
            "stream_resubscribed",
            f"{gap.exchange} {gap.symbol} {gap.channel}: resubscribed; hole "
            f"{gap.gap_start.isoformat()} .. {end.isoformat()} {status} ({rows} rows back-filled)",
            component=gap.exchange,
            details={"gap_id": gap_id, "status": status, "rows": rows, **dict(detail or {})},
        )


@dataclass(frozen=True)
class Heartbeat:
    """One stream's state after a flush (or a status change)."""

    exchange: str
    symbol: str
    channel: str
    status: str
    last_exchange_time: datetime | None
    last_arrival_time: datetime | None
    last_commit_time: datetime | None
    rows_total: int
    rows_last_minute: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    reconnects: int
    started_at: datetime | None


def write_heartbeats(conn: sa.Connection, beats: Iterable[Heartbeat]) -> None:
    """Upsert the `stream_state` rows of `beats`; a time never moves back (a late flush of older rows)."""
    rows = [{**vars(beat), "updated_at": clock.now()} for beat in beats]
    if not rows:
        return
    stmt = pg_insert(StreamState).values(rows)
    excluded = stmt.excluded
    newest = {
        name: sa.func.greatest(getattr(StreamState, name), getattr(excluded, name))
        for name in ("last_exchange_time", "last_arrival_time", "last_commit_time")
    }
    keep = {"status", "rows_total", "rows_last_minute", "lag_p50_ms", "lag_p99_ms", "reconnects"}
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["exchange", "symbol", "channel"],
            set_={
                **newest,
                **{name: getattr(excluded, name) for name in keep},
                "updated_at": excluded.updated_at,
            },
        )
    )


def last_seen(engine: sa.Engine, exchange: str) -> dict[tuple[str, str], datetime]:
    """(symbol, channel) -> newest committed exchange time of a previous run: where a restart's hole starts."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(StreamState.symbol, StreamState.channel, StreamState.last_exchange_time).where(
                StreamState.exchange == exchange, StreamState.last_exchange_time.is_not(None)
            )
        ).all()
    return {(r.symbol, r.channel): r.last_exchange_time for r in rows}


def record_stream_coverage(
    conn: sa.Connection,
    key: SeriesKey,
    start: datetime,
    end: datetime,
    rows: int,
    driver: str,
) -> None:
    """The stream saw `[start, end)` of `key` whole: into the coverage ledger, so REST pulls skip it."""
    record_coverage(conn, key, start, end, rows=rows, status="complete", source=f"stream:{driver}")


@dataclass(frozen=True)
class StreamStatus:
    """One stream as `stream --status` and the Dagster observation show it."""

    exchange: str
    symbol: str
    channel: str
    status: str
    last_exchange_time: datetime | None
    last_commit_time: datetime | None
    lag_seconds: float | None  # now - newest committed exchange time
    rows_total: int
    rows_last_minute: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    reconnects: int
    open_gaps: int
    unfilled_gaps: int

    def stale(self, after_seconds: float) -> bool:
        """Nothing committed for `after_seconds` while the service says it runs (or never anything)."""
        if self.status == "stopped":
            return False
        if self.last_commit_time is None:
            return True
        return (clock.now() - self.last_commit_time).total_seconds() > after_seconds


def stream_status(conn: sa.Connection, exchange: str | None = None) -> list[StreamStatus]:
    """Every stream's heartbeat with its open and unfilled holes, by exchange, symbol and channel."""
    gaps = (
        sa.select(
            CaptureGap.exchange,
            CaptureGap.symbol,
            CaptureGap.channel,
            sa.func.count().filter(CaptureGap.status == "open").label("open_gaps"),
            sa.func.count().filter(CaptureGap.status == "unfilled").label("unfilled_gaps"),
        )
        .group_by(CaptureGap.exchange, CaptureGap.symbol, CaptureGap.channel)
        .subquery()
    )
    on = sa.and_(
        gaps.c.exchange == StreamState.exchange,
        gaps.c.symbol == StreamState.symbol,
        gaps.c.channel == StreamState.channel,
    )
    stmt = sa.select(StreamState, gaps.c.open_gaps, gaps.c.unfilled_gaps).outerjoin(gaps, on)
    if exchange is not None:
        stmt = stmt.where(StreamState.exchange == exchange)
    now = clock.now()
    out = []
    for row in conn.execute(stmt.order_by(StreamState.exchange, StreamState.symbol, StreamState.channel)):
        last = row.last_exchange_time
        out.append(
            StreamStatus(
                exchange=row.exchange,
                symbol=row.symbol,
                channel=row.channel,
                status=row.status,
                last_exchange_time=last,
                last_commit_time=row.last_commit_time,
                lag_seconds=(now - last).total_seconds() if last else None,
                rows_total=row.rows_total,
                rows_last_minute=row.rows_last_minute,
                lag_p50_ms=row.lag_p50_ms,
                lag_p99_ms=row.lag_p99_ms,
                reconnects=row.reconnects,
                open_gaps=row.open_gaps or 0,
                unfilled_gaps=row.unfilled_gaps or 0,
            )
        )
    return out
