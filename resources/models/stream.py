"""Live capture (issue 15): the holes of the websocket streams and each stream's last known state.

`capture_gaps` is the stream's own ledger of what it did not see: one row per disconnect (or restart) of one
(exchange, symbol, channel), from the last exchange time seen before it to the first one after it, and what
the REST back-fill made of it. `stream_state` is the heartbeat the service writes at every flush, which the
`stream --status` command and the Dagster observation read without talking to the service.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Json, UtcTimestamp

GAP_STATUSES = ("open", "filled", "unfilled", "unfillable")


class CaptureGap(Base):
    """A hole in one live stream: `[gap_start, gap_end]` in exchange time, and whether REST filled it.

    `open` while the stream is down (gap_end unknown); `filled` when the back-fill answered the whole hole;
    `unfilled` when it failed or answered only part (`detail` says why); `unfillable` for channels that
    have no history to ask (order books, tickers).
    """

    __tablename__ = "capture_gaps"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'filled', 'unfilled', 'unfillable')", name="status"),
        CheckConstraint("gap_end IS NULL OR gap_end >= gap_start", name="range"),
        Index(
            "ix_capture_gaps_exchange_symbol_channel_gap_start", "exchange", "symbol", "channel", "gap_start"
        ),
        Index("ix_capture_gaps_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)  # 'trades', 'ohlcv', 'orderbook', 'ticker'
    reason: Mapped[str] = mapped_column(Text)  # 'disconnect', 'restart'
    gap_start: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    gap_end: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    status: Mapped[str] = mapped_column(Text, server_default=text("'open'"))
    filled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    rows_filled: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)


class StreamState(Base):
    """The heartbeat of one (exchange, symbol, channel) stream, written at every flush of its rows."""

    __tablename__ = "stream_state"
    __table_args__ = (
        PrimaryKeyConstraint("exchange", "symbol", "channel"),
        CheckConstraint("status IN ('running', 'reconnecting', 'stopped')", name="status"),
    )

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    last_exchange_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)  # newest committed row
    last_arrival_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    last_commit_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    rows_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_last_minute: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    lag_p50_ms: Mapped[float | None] = mapped_column(Float)
    lag_p99_ms: Mapped[float | None] = mapped_column(Float)
    reconnects: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
