"""Retention: old data leaves by whole chunks or partitions, never before its aggregates are refreshed.

A piece (chunk or partition) is expired when its whole range is older than the table's retention; pieces
straddling the cutoff wait for the next run. TimescaleDB drops chunks with `drop_chunks` (both licenses);
plain PostgreSQL detaches then drops the partition (`mw_drop_partition`).

`ohlcv` holds several candle intervals in one table with a retention per interval (e.g. 1m: 90 days, the
rest forever). An expired ohlcv piece is dropped whole only when every row in it is expired; otherwise
only the expired intervals' rows are deleted from it (the 1h/1d candles stay). Before anything leaves
ohlcv the aggregates are refreshed, and a piece that still holds dirty (not yet aggregated) hours — a
load committed meanwhile — is kept and reported, so raw candles never leave before their 1h/1d buckets.

With a cold tier configured for the table (`maintenance: cold:`), the rows leaving a piece are first
exported to Parquet (`resources.maintenance.cold`) in the transaction that removes them, after the piece is
locked against writes; the drop or delete happens only once the files are verified, and a failed export
keeps the piece and records the error (event 'retention_export_failed').

Nothing expires unless the policy lists it (the default policy has no retention). Every drop or delete is
recorded in `system_events` in the transaction that does it (source 'maintenance', component
'retention'): table, piece, intervals, time range, rows counted just before, bytes of a dropped piece.
`plan_retention` makes the same decisions read-only, for `market-warehouse maintenance plan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market_warehouse.resources import clock
from market_warehouse.resources.backend import Capabilities, engine_capabilities
from market_warehouse.resources.maintenance.aggregates import (
    SOURCE_INTERVAL,
    RefreshResult,
    pending_buckets,
    refresh_aggregates,
)
from market_warehouse.resources.maintenance.cold import ColdExportError, export_piece
from market_warehouse.resources.maintenance.compression import LOCK_NOT_AVAILABLE, LOCK_TIMEOUT
from market_warehouse.resources.maintenance.pieces import Piece, composed, list_pieces, piece_sizes
from market_warehouse.resources.maintenance.policy import (
    ALL_INTERVALS,
    MaintenancePolicy,
    format_age,
    redact_location,
)
from market_warehouse.resources.models import TIMESERIES
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.ops.operations import log_event

log = logging.getLogger(__name__)

DROPPED = "dropped"
ROWS_DELETED = "rows deleted"
KEPT_DIRTY = "kept: hours not yet aggregated"
BUSY = "busy (lock timeout), retried next run"
EXPORT_FAILED = "kept: cold export failed"

EVENT_SOURCE = "maintenance"
EVENT_COMPONENT = "retention"
EVENT_TYPES = {DROPPED: "retention_drop", ROWS_DELETED: "retention_delete"}
EXPORT_FAILED_EVENT = "retention_export_failed"

Rules = Mapping[str, timedelta]
Sizes = Callable[[sa.Connection], dict[tuple[str, str], int]]


@dataclass(frozen=True)
class PieceAction:
    """What retention did (or, in a plan, will do) to one chunk or partition.

    `rows`: rows dropped or deleted, counted just before (dirty hours for KEPT_DIRTY); `bytes`: size of a
    dropped piece (None for a delete of rows, whose space is reclaimed by vacuum, not at once).
    """

    table: str
    piece: str
    start: datetime
    end: datetime
    action: str
    rows: int | None = None
    intervals: tuple[str, ...] = ()  # expired candle intervals of ohlcv; () when the whole table expires
    bytes: int | None = None
    rows_by_interval: Mapping[str, int] = field(default_factory=dict)  # ohlcv only
    schema: str = ""
    export_to: str | None = None  # the cold location the rows go to first (redacted), None: dropped for good
    exported: Mapping[str, object] = field(default_factory=dict)  # files, rows, bytes of the export
    error: str | None = None  # EXPORT_FAILED: why

    @property
    def label(self) -> str:
        """The action as people read it: "export then drop" when a cold tier receives the rows first."""
        if self.export_to and self.action in (DROPPED, ROWS_DELETED):
            return f"export then {'drop' if self.action == DROPPED else 'delete rows'}"
        return self.action

    def record(self) -> dict[str, object]:
        """Flat, JSON-ready form (metadata tables, `maintenance plan --json`, system_events details)."""
        return {
            "table": self.table,
            "piece": f"{self.schema}.{self.piece}" if self.schema else self.piece,
            "action": self.action,
            "intervals": ", ".join(self.intervals) or "all",
            "range_start": self.start.isoformat(),
            "range_end": self.end.isoformat(),
            "rows": self.rows,
            "rows_by_interval": dict(self.rows_by_interval),
            "bytes": self.bytes,
            **({"export_to": self.export_to, "exported": dict(self.exported)} if self.export_to else {}),
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class Expiry:
    """The decision for one piece whose range has expired: drop it whole, or delete some intervals' rows."""

    piece: Piece
    action: str  # DROPPED or ROWS_DELETED
    intervals: tuple[str, ...]
    guarded: bool  # holds raw 1m candles: never leaves while their hours are not aggregated

    def outcome(self, action: str, rows: int | None = None, **extra: object) -> PieceAction:
        p = self.piece
        return PieceAction(
            p.table, p.name, p.start, p.end, action, rows, self.intervals, schema=p.schema, **extra
        )


@dataclass
class RetentionResult:
    now: datetime
    refresh: RefreshResult | None = None
    actions: list[PieceAction] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, action: str, table: str | None = None) -> list[PieceAction]:
        return [a for a in self.actions if a.action == action and (table is None or a.table == table)]

    @property
    def removed(self) -> list[PieceAction]:
        """The pieces dropped and the deletes of rows, in the order they happened."""
        return [a for a in self.actions if a.action in (DROPPED, ROWS_DELETED)]

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {
            "now": self.now.isoformat(),
            "pieces_dropped": len(self.of(DROPPED)),
            "pieces_trimmed": len(self.of(ROWS_DELETED)),
            "rows_removed": sum(a.rows or 0 for a in self.removed),
            "bytes_dropped": sum(a.bytes or 0 for a in self.of(DROPPED)),
            "rows_deleted": sum(a.rows or 0 for a in self.of(ROWS_DELETED)),
            "pieces_kept_dirty": len(self.of(KEPT_DIRTY)),
            "pieces_busy": len(self.of(BUSY)),
            "pieces_exported": sum(1 for a in self.removed if a.exported),
            "rows_exported": sum(int(a.exported.get("rows", 0)) for a in self.removed),
            "export_failures": len(self.of(EXPORT_FAILED)),
            "seconds": round(self.seconds, 3),
        }
        if self.refresh is not None:
            out["refreshed_dirty_hours"] = self.refresh.dirty_hours
        for action in self.actions:
            if action.action in (KEPT_DIRTY, BUSY, EXPORT_FAILED):
                out[f"{action.table}/{action.piece}"] = (
                    f"{action.action}: [{action.start.isoformat()}, {action.end.isoformat()})"
                    + (f": {action.error}" if action.error else "")
                )
        return out


def decide(conn: sa.Connection, table: str, rules: Rules, piece: Piece, now: datetime) -> Expiry | None:
    """What retention does to `piece` at `now` under `rules` (None: nothing has expired in it).

    One function for the nightly job and the plan, so the plan cannot promise what the job does not do.
    """
    if piece.is_default:
        return None
    everything = ALL_INTERVALS in rules and piece.expired(now - rules[ALL_INTERVALS])
    expired = tuple(
        sorted(iv for iv, age in rules.items() if iv != ALL_INTERVALS and piece.expired(now - age))
    )
    if not everything and not expired:
        return None
    guarded = table == "ohlcv" and (everything or SOURCE_INTERVAL in expired)
    trim = table == "ohlcv" and not everything and _rows_kept(conn, piece, expired)
    return Expiry(piece, ROWS_DELETED if trim else DROPPED, () if everything else expired, guarded)


def count_rows(conn: sa.Connection, expiry: Expiry) -> tuple[int, dict[str, int]]:
    """Rows `expiry` removes (and, for ohlcv, how many per interval), counted exactly by time range on the
    table, so a partition the same run is about to create out of DEFAULT is counted too."""
    piece = expiry.piece
    params = {"start": piece.start, "end": piece.end}
    if piece.table == "ohlcv":
        params["intervals"] = list(expiry.intervals) if expiry.action == ROWS_DELETED else None
        rows = conn.execute(sql_text("common/ohlcv_rows_by_interval"), params).all()
        by_interval = {interval: n for interval, n in rows}
        return sum(by_interval.values()), by_interval
    spec = TIMESERIES[piece.table]
    stmt = composed(conn, "common/rows_in_range", table=spec.table, time_column=spec.time_column)
    return conn.execute(sa.text(stmt), params).scalar_one(), {}


def plan_retention(
    conn: sa.Connection,
    caps: Capabilities,
    policy: MaintenancePolicy,
    now: datetime,
    created: Sequence[Piece] = (),
) -> list[PieceAction]:
    """What `apply_retention(now=now)` would drop or delete, with rows and bytes, without changing anything.

    `created`: partitions the same run creates first (plain PostgreSQL: out of DEFAULT, or ahead); they are
    judged like the others, their bytes unknown yet. Pieces holding hours not yet aggregated are listed
    too: the nightly run refreshes them first.
    """
    planned: list[PieceAction] = []
    for table, rules in sorted(policy.retention.items()):
        sizes = _sizes_once(caps, table)
        cold = _shown(policy.cold_for(table))
        future = [p for p in created if p.table == table]
        for piece in sorted(list_pieces(conn, caps, table) + future, key=_oldest_first):
            expiry = decide(conn, table, rules, piece, now)
            if expiry is None:
                continue
            rows, by_interval = count_rows(conn, expiry)
            if expiry.action == ROWS_DELETED:
                if rows:
                    planned.append(
                        expiry.outcome(ROWS_DELETED, rows, rows_by_interval=by_interval, export_to=cold)
                    )
                continue
            size = sizes(conn).get((piece.schema, piece.name))
            planned.append(
                expiry.outcome(DROPPED, rows, bytes=size, rows_by_interval=by_interval, export_to=cold)
            )
    return planned


def apply_retention(
    engine: sa.Engine,
    policy: MaintenancePolicy,
    now: datetime | None = None,
    caps: Capabilities | None = None,
    refresh_first: bool = True,
    run_id: str | None = None,
) -> RetentionResult:
    """Drop (or trim) every expired piece of the tables with a retention in `policy`; nothing without one.

    `refresh_first=False` skips the refresh: pieces holding dirty hours are then kept and reported.
    `run_id` (the Dagster run) goes into each system_events record.
    """
    caps = engine_capabilities(engine, caps)
    began = time.perf_counter()
    result = RetentionResult(now=now or clock.now())
    if refresh_first and "ohlcv" in policy.retention:
        result.refresh = refresh_aggregates(engine, caps)
    for table, rules in sorted(policy.retention.items()):
        with engine.connect() as conn:
            pieces = [p for p in list_pieces(conn, caps, table) if not p.is_default]
        sizes = _sizes_once(caps, table)
        cold = policy.cold_for(table)
        for piece in pieces:
            try:
                action = _expire(engine, caps, rules, piece, result.now, sizes, run_id, cold)
            except ColdExportError as exc:  # the piece stays; the failed export is recorded
                action = _export_failed(engine, rules, piece, result.now, run_id, cold, exc)
            if action is not None:
                result.actions.append(action)
    result.seconds = time.perf_counter() - began
    return result


def _shown(location: str | None) -> str | None:
    return None if location is None else redact_location(location)


def _oldest_first(piece: Piece) -> tuple[bool, datetime]:
    return (piece.start is not None, piece.start or datetime.min.replace(tzinfo=UTC))


def _sizes_once(caps: Capabilities, table: str) -> Sizes:
    """Piece sizes of `table`, read on first need only (most nights nothing expires) and then reused."""
    cache: dict[tuple[str, str], int] | None = None

    def sizes(conn: sa.Connection) -> dict[tuple[str, str], int]:
        nonlocal cache
        if cache is None:
            cache = piece_sizes(conn, caps, table)
        return cache

    return sizes


def _expire(
    engine: sa.Engine,
    caps: Capabilities,
    rules: Rules,
    piece: Piece,
    now: datetime,
    sizes: Sizes,
    run_id: str | None,
    cold: str | None,
) -> PieceAction | None:
    table = piece.table
    try:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(sql_text("common/set_lock_timeout"), {"timeout": LOCK_TIMEOUT})
            expiry = decide(conn, table, rules, piece, now)
            if expiry is None:
                return None
            if expiry.guarded and (dirty := pending_buckets(conn, piece.start, piece.end)):
                log.warning("%s keeps %s: %d hours not yet aggregated", table, piece.name, dirty)
                return expiry.outcome(KEPT_DIRTY, dirty)
            if cold is not None:
                # No write may reach the piece between the export and the drop: rows would be lost.
                conn.execute(sa.text(f"LOCK TABLE {piece.qualified} IN SHARE MODE"))
            rows, by_interval = count_rows(conn, expiry)
            exported: dict[str, object] = {}
            if cold is not None and rows:
                intervals = expiry.intervals if expiry.action == ROWS_DELETED else ()
                exported = export_piece(conn, piece, cold, rows, intervals, run_id).record()
            extra = {"export_to": _shown(cold), "exported": exported} if cold is not None else {}
            if expiry.action == ROWS_DELETED:
                if not rows:
                    return None
                params = {"start": piece.start, "end": piece.end, "expired": list(expiry.intervals)}
                deleted = conn.execute(sql_text("common/ohlcv_delete_intervals"), params).rowcount
                outcome = expiry.outcome(ROWS_DELETED, deleted, rows_by_interval=by_interval, **extra)
            else:
                size = sizes(conn).get((piece.schema, piece.name))
                if not _drop(conn, caps, piece):
                    return None  # already gone (a concurrent run): nothing to record
                outcome = expiry.outcome(DROPPED, rows, bytes=size, rows_by_interval=by_interval, **extra)
            # The drop (or delete) waited for any load still writing into the piece; such a load recorded
            # its hours in the dirty log in the same transaction, so it is visible now: undo, keep the piece.
            if expiry.guarded and (dirty := pending_buckets(conn, piece.start, piece.end)):
                tx.rollback()
                log.warning("%s keeps %s: a load added %d dirty hours meanwhile", table, piece.name, dirty)
                return expiry.outcome(KEPT_DIRTY, dirty)
            _record(conn, outcome, rules, now, run_id)
            return outcome
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        log.warning("%s: %s is busy (lock timeout), left for the next run", table, piece.name)
        return PieceAction(table, piece.name, piece.start, piece.end, BUSY, schema=piece.schema)


def _export_failed(
    engine: sa.Engine,
    rules: Rules,
    piece: Piece,
    now: datetime,
    run_id: str | None,
    cold: str | None,
    exc: ColdExportError,
) -> PieceAction:
    """The piece stays (its transaction rolled back); the error goes to system_events and the step."""
    action = PieceAction(
        piece.table,
        piece.name,
        piece.start,
        piece.end,
        EXPORT_FAILED,
        schema=piece.schema,
        export_to=_shown(cold),
        error=str(exc),
    )
    message = f"retention kept {piece.table} {piece.schema}.{piece.name}: the export to the cold tier failed ({exc})"
    details = {
        **action.record(),
        "retention": {interval: format_age(age) for interval, age in sorted(rules.items())},
        "now": now.isoformat(),
        "run_id": run_id,
    }
    with engine.begin() as conn:
        log_event(
            conn,
            "error",
            EVENT_SOURCE,
            EXPORT_FAILED_EVENT,
            message,
            component=EVENT_COMPONENT,
            details=details,
        )
    log.error("%s", message)
    return action


def _record(
    conn: sa.Connection, outcome: PieceAction, rules: Rules, now: datetime, run_id: str | None
) -> None:
    """One system_events row for a drop or delete, in its transaction: it exists if and only if it happened."""
    what = "all intervals" if not outcome.intervals else ", ".join(outcome.intervals)
    verb = "dropped" if outcome.action == DROPPED else "deleted"
    message = (
        f"retention {verb} {outcome.rows:,} rows of {outcome.table} ({what}) in "
        f"[{outcome.start.isoformat()}, {outcome.end.isoformat()}): {outcome.schema}.{outcome.piece}"
    )
    details = {
        **outcome.record(),
        "retention": {interval: format_age(age) for interval, age in sorted(rules.items())},
        "now": now.isoformat(),
        "run_id": run_id,
    }
    log_event(
        conn,
        "info",
        EVENT_SOURCE,
        EVENT_TYPES[outcome.action],
        message,
        component=EVENT_COMPONENT,
        details=details,
    )
    log.info("%s", message)


def _rows_kept(conn: sa.Connection, piece: Piece, expired: tuple[str, ...]) -> bool:
    """True when the ohlcv piece holds candles of intervals that are not expired there."""
    params = {"start": piece.start, "end": piece.end, "expired": list(expired)}
    return bool(conn.execute(sql_text("common/ohlcv_rows_kept"), params).scalar_one())


def _drop(conn: sa.Connection, caps: Capabilities, piece: Piece) -> bool:
    """Drop the piece; False when TimescaleDB found no chunk in its range any more."""
    if caps.native_partitions:
        conn.execute(sql_text("postgres/drop_partition"), {"partition": piece.qualified})
        return True
    dropped = conn.execute(
        sql_text("timescaledb/drop_chunk"),
        {"table_name": piece.table, "range_start": piece.start, "range_end": piece.end},
    ).scalar_one()
    return bool(dropped)
