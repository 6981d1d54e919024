"""Retention: old data leaves by whole chunks or partitions, never before its aggregates are refreshed.

A piece (chunk or partition) is expired when its whole range is older than the table's retention; pieces
straddling the cutoff wait for the next run. TimescaleDB drops chunks with `drop_chunks` (both licenses);
plain PostgreSQL detaches then drops the partition (`mw_drop_partition`).

`ohlcv` holds several candle intervals in one table with a retention per interval (e.g. 1m: 90 days, the
rest forever). An expired ohlcv piece is dropped whole only when every row in it is expired; otherwise
only the expired intervals' rows are deleted from it (the 1h/1d candles stay). Before anything leaves
ohlcv the aggregates are refreshed, and a piece that still holds dirty (not yet aggregated) hours — a
load committed meanwhile — is kept and reported, so raw candles never leave before their 1h/1d buckets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from resources.backend import Capabilities, detect
from resources.maintenance.aggregates import (
    SOURCE_INTERVAL,
    RefreshResult,
    pending_buckets,
    refresh_aggregates,
)
from resources.maintenance.compression import LOCK_NOT_AVAILABLE, LOCK_TIMEOUT
from resources.maintenance.pieces import Piece, list_pieces
from resources.maintenance.policy import ALL_INTERVALS, MaintenancePolicy
from resources.sqlfiles import sql_text

log = logging.getLogger(__name__)

DROPPED = "dropped"
ROWS_DELETED = "rows deleted"
KEPT_DIRTY = "kept: hours not yet aggregated"
BUSY = "busy (lock timeout), retried next run"


@dataclass(frozen=True)
class PieceAction:
    table: str
    piece: str
    start: datetime
    end: datetime
    action: str
    rows: int | None = None  # rows deleted, or dirty hours for KEPT_DIRTY
    intervals: tuple[str, ...] = ()


@dataclass
class RetentionResult:
    now: datetime
    refresh: RefreshResult | None = None
    actions: list[PieceAction] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, action: str, table: str | None = None) -> list[PieceAction]:
        return [a for a in self.actions if a.action == action and (table is None or a.table == table)]

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {
            "now": self.now.isoformat(),
            "pieces_dropped": len(self.of(DROPPED)),
            "pieces_trimmed": len(self.of(ROWS_DELETED)),
            "rows_deleted": sum(a.rows or 0 for a in self.of(ROWS_DELETED)),
            "pieces_kept_dirty": len(self.of(KEPT_DIRTY)),
            "pieces_busy": len(self.of(BUSY)),
            "seconds": round(self.seconds, 3),
        }
        if self.refresh is not None:
            out["refreshed_dirty_hours"] = self.refresh.dirty_hours
        for action in self.actions:
            key = f"{action.table}/{action.piece}"
            detail = action.action if action.rows is None else f"{action.action} ({action.rows})"
            out[key] = f"{detail}: [{action.start.isoformat()}, {action.end.isoformat()})"
        return out


def apply_retention(
    engine: sa.Engine,
    policy: MaintenancePolicy,
    now: datetime | None = None,
    caps: Capabilities | None = None,
    refresh_first: bool = True,
) -> RetentionResult:
    """Drop (or trim) every expired piece of the tables with a retention in `policy`.

    `refresh_first=False` skips the refresh: pieces holding dirty hours are then kept and reported.
    """
    if caps is None:
        with engine.connect() as conn:
            caps = detect(conn)
    began = time.perf_counter()
    result = RetentionResult(now=now or datetime.now(UTC))
    if refresh_first and "ohlcv" in policy.retention:
        result.refresh = refresh_aggregates(engine, caps)
    for table, rules in sorted(policy.retention.items()):
        with engine.connect() as conn:
            pieces = [p for p in list_pieces(conn, caps, table) if not p.is_default]
        for piece in pieces:
            action = _expire(engine, caps, table, rules, piece, result.now)
            if action is not None:
                result.actions.append(action)
    result.seconds = time.perf_counter() - began
    return result


def _expire(
    engine: sa.Engine, caps: Capabilities, table: str, rules: dict, piece: Piece, now: datetime
) -> PieceAction | None:
    everything = ALL_INTERVALS in rules and piece.expired(now - rules[ALL_INTERVALS])
    expired = tuple(
        sorted(iv for iv, age in rules.items() if iv != ALL_INTERVALS and piece.expired(now - age))
    )
    if not everything and not expired:
        return None

    def act(action: str, rows: int | None = None) -> PieceAction:
        return PieceAction(table, piece.name, piece.start, piece.end, action, rows, expired)

    guard = table == "ohlcv" and (everything or SOURCE_INTERVAL in expired)
    try:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(sql_text("common/set_lock_timeout"), {"timeout": LOCK_TIMEOUT})
            if guard and (dirty := pending_buckets(conn, piece.start, piece.end)):
                log.warning("%s keeps %s: %d hours not yet aggregated", table, piece.name, dirty)
                return act(KEPT_DIRTY, dirty)
            outcome = act(DROPPED)
            if table == "ohlcv" and not everything and _rows_kept(conn, piece, expired):
                deleted = conn.execute(
                    sql_text("common/ohlcv_delete_intervals"),
                    {"start": piece.start, "end": piece.end, "expired": list(expired)},
                ).rowcount
                outcome = act(ROWS_DELETED, deleted) if deleted else None
            else:
                _drop(conn, caps, piece)
            # The drop (or delete) waited for any load still writing into the piece; such a load recorded
            # its hours in the dirty log in the same transaction, so it is visible now: undo, keep the piece.
            if guard and (dirty := pending_buckets(conn, piece.start, piece.end)):
                tx.rollback()
                log.warning("%s keeps %s: a load added %d dirty hours meanwhile", table, piece.name, dirty)
                return act(KEPT_DIRTY, dirty)
            return outcome
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        log.warning("%s: %s is busy (lock timeout), left for the next run", table, piece.name)
        return act(BUSY)


def _rows_kept(conn: sa.Connection, piece: Piece, expired: tuple[str, ...]) -> bool:
    """True when the ohlcv piece holds candles of intervals that are not expired there."""
    params = {"start": piece.start, "end": piece.end, "expired": list(expired)}
    return bool(conn.execute(sql_text("common/ohlcv_rows_kept"), params).scalar_one())


def _drop(conn: sa.Connection, caps: Capabilities, piece: Piece) -> None:
    if caps.native_partitions:
        conn.execute(sql_text("postgres/drop_partition"), {"partition": piece.qualified})
    else:
        conn.execute(
            sql_text("timescaledb/drop_chunk"),
            {"table_name": piece.table, "range_start": piece.start, "range_end": piece.end},
        )
