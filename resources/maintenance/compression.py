"""Columnstore compression of old chunks (TimescaleDB full license), reported as unavailable elsewhere.

The settings (segment by series, order by time descending) are declared by migration 0003 in
sql/timescaledb/columnstore_settings.sql (ohlcv's series gained its price kind in migration 0005:
sql/timescaledb/ohlcv_columnstore_by_price.sql); this job converts every chunk of a configured table whose whole
range is older than the policy's age, one chunk per transaction, and reports chunks done and bytes
before/after. Apache-only TimescaleDB and plain PostgreSQL have no columnstore: the job says so and succeeds.
`plan_compression` lists the chunks a run would convert, read-only, for `market-warehouse maintenance plan`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market_warehouse.resources import clock
from market_warehouse.resources.backend import Capabilities, engine_capabilities
from market_warehouse.resources.maintenance.pieces import Piece, list_pieces, piece_sizes
from market_warehouse.resources.maintenance.policy import ALL_INTERVALS, MaintenancePolicy
from market_warehouse.resources.sqlfiles import sql_text

log = logging.getLogger(__name__)

COLUMNSTORE_API = (2, 18)  # convert_to_columnstore & co. replace compress_chunk & co.
LOCK_TIMEOUT = "10s"
LOCK_NOT_AVAILABLE = "55P03"


def columnstore_api(caps: Capabilities) -> bool:
    """True on TimescaleDB 2.18+, where compression is spelled 'columnstore'."""
    version = caps.timescaledb_version or "0"
    parts = tuple(int(p) for p in version.split("-")[0].split(".")[:2] if p.isdigit())
    return parts >= COLUMNSTORE_API


def unavailable(caps: Capabilities) -> str:
    return f"unavailable on this backend ({caps.backend.value})"


@dataclass
class TableCompression:
    table: str
    chunks_converted: int = 0
    bytes_before: int = 0  # of the chunks converted by this run
    bytes_after: int = 0
    busy: list[str] = field(default_factory=list)  # chunks skipped on lock timeout, retried next run
    skipped_expiring: int = 0  # chunks retention drops anyway: converting them would be wasted work
    not_configured: bool = False


@dataclass
class CompressionResult:
    status: str
    cutoff: datetime | None = None
    tables: list[TableCompression] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def chunks_converted(self) -> int:
        return sum(t.chunks_converted for t in self.tables)

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {"status": self.status, "seconds": round(self.seconds, 3)}
        if self.cutoff is not None:
            out["cutoff"] = self.cutoff.isoformat()
            out["chunks_converted"] = self.chunks_converted
            out["bytes_before"] = sum(t.bytes_before for t in self.tables)
            out["bytes_after"] = sum(t.bytes_after for t in self.tables)
        for t in self.tables:
            if t.not_configured:
                out[f"{t.table}/status"] = "no columnstore settings (run market-warehouse migrate)"
                continue
            out[f"{t.table}/chunks_converted"] = t.chunks_converted
            out[f"{t.table}/bytes_before"] = t.bytes_before
            out[f"{t.table}/bytes_after"] = t.bytes_after
            if t.busy:
                out[f"{t.table}/busy_chunks"] = ", ".join(t.busy)
        return out


@dataclass(frozen=True)
class PlannedCompression:
    """A chunk a run would convert, with its size now (before conversion)."""

    table: str
    piece: str
    start: datetime
    end: datetime
    bytes: int | None

    def record(self) -> dict[str, object]:
        return {
            "table": self.table,
            "piece": self.piece,
            "range_start": self.start.isoformat(),
            "range_end": self.end.isoformat(),
            "bytes": self.bytes,
        }


@dataclass
class CompressionPlan:
    status: str
    cutoff: datetime | None = None
    chunks: list[PlannedCompression] = field(default_factory=list)
    not_configured: list[str] = field(default_factory=list)  # listed tables without columnstore settings


def plan_compression(
    conn: sa.Connection, caps: Capabilities, policy: MaintenancePolicy, now: datetime
) -> CompressionPlan:
    """The chunks `compress_chunks(now=now)` would convert, changing nothing."""
    if not caps.compression:
        return CompressionPlan(status=unavailable(caps))
    plan = CompressionPlan(status="planned", cutoff=now - policy.compress_after)
    enabled = _enabled(conn)
    for table in policy.compress_tables:
        if not enabled.get(table):
            plan.not_configured.append(table)
            continue
        chunks, _ = _to_convert(list_pieces(conn, caps, table), policy, table, now, plan.cutoff)
        if chunks:
            sizes = piece_sizes(conn, caps, table)
            plan.chunks += [
                PlannedCompression(table, p.name, p.start, p.end, sizes.get((p.schema, p.name)))
                for p in chunks
            ]
    return plan


def compress_chunks(
    engine: sa.Engine,
    policy: MaintenancePolicy,
    now: datetime | None = None,
    caps: Capabilities | None = None,
) -> CompressionResult:
    """Convert the chunks older than `policy.compress_after` of `policy.compress_tables`."""
    caps = engine_capabilities(engine, caps)
    if not caps.compression:
        return CompressionResult(status=unavailable(caps))
    began = time.perf_counter()
    now = now or clock.now()
    result = CompressionResult(status="done", cutoff=now - policy.compress_after)
    with engine.connect() as conn:
        enabled = _enabled(conn)
    for table in policy.compress_tables:
        outcome = TableCompression(table)
        result.tables.append(outcome)
        if not enabled.get(table):
            outcome.not_configured = True
            continue
        _compress_table(engine, caps, policy, table, now, result.cutoff, outcome)
    result.seconds = time.perf_counter() - began
    return result


def _enabled(conn: sa.Connection) -> dict[str, bool]:
    return {
        r["table_name"]: r["compression_enabled"]
        for r in conn.execute(sql_text("timescaledb/compression_enabled")).mappings()
    }


def _to_convert(
    pieces: list[Piece], policy: MaintenancePolicy, table: str, now: datetime, cutoff: datetime
) -> tuple[list[Piece], int]:
    """The chunks a run converts, and how many old ones it skips because retention drops them anyway."""
    retention = policy.retention.get(table, {})
    # A table expiring as a whole (not per interval) drops these chunks in the same nightly run.
    expires = now - retention[ALL_INTERVALS] if ALL_INTERVALS in retention else None
    old = [p for p in pieces if not p.compressed and p.expired(cutoff)]
    convert = [p for p in old if expires is None or not p.expired(expires)]
    return convert, len(old) - len(convert)


def _compress_table(
    engine: sa.Engine,
    caps: Capabilities,
    policy: MaintenancePolicy,
    table: str,
    now: datetime,
    cutoff: datetime,
    outcome: TableCompression,
) -> None:
    with engine.connect() as conn:
        pieces, outcome.skipped_expiring = _to_convert(
            list_pieces(conn, caps, table), policy, table, now, cutoff
        )
    converted: set[tuple[str, str]] = set()
    convert = (
        "timescaledb/convert_to_columnstore" if columnstore_api(caps) else "timescaledb/compress_chunk_legacy"
    )
    for piece in pieces:
        try:
            with engine.begin() as conn:
                conn.execute(sql_text("common/set_lock_timeout"), {"timeout": LOCK_TIMEOUT})
                conn.execute(sql_text(convert), {"chunk": piece.qualified})
        except OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
            log.warning("chunk %s of %s is busy (lock timeout): left for the next run", piece.name, table)
            outcome.busy.append(piece.name)
            continue
        converted.add((piece.schema, piece.name))
    outcome.chunks_converted = len(converted)
    if not converted:
        return
    stats = (
        "timescaledb/chunk_columnstore_stats"
        if columnstore_api(caps)
        else "timescaledb/chunk_compression_stats_legacy"
    )
    with engine.connect() as conn:
        for row in conn.execute(sql_text(stats), {"table_name": table}).mappings():
            if (row["schema_name"], row["relation_name"]) in converted:
                outcome.bytes_before += row["bytes_before"] or 0
                outcome.bytes_after += row["bytes_after"] or 0


def compression_totals(conn: sa.Connection, caps: Capabilities, table: str) -> dict[str, int] | None:
    """Columnstore totals of a hypertable (chunks, compressed chunks, bytes before/after), None if none."""
    if not caps.compression:
        return None
    name = (
        "timescaledb/hypertable_columnstore_stats"
        if columnstore_api(caps)
        else "timescaledb/hypertable_compression_stats_legacy"
    )
    row = conn.execute(sql_text(name), {"table_name": table}).mappings().first()
    if row is None or not row["compressed_chunks"]:
        return None
    return {
        key: int(row[key] or 0)
        for key in ("total_chunks", "compressed_chunks", "bytes_before", "bytes_after")
    }
