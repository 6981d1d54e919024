"""Partition management on plain PostgreSQL: partitions ahead of time, and an empty DEFAULT partition.

Rows land in DEFAULT when no partition covers their time (an old backfill, a clock far ahead). Such rows
are slow to prune and cannot be dropped by retention, so each run creates the partitions they belong in
(`mw_ensure_partitions` moves them out of DEFAULT in the same transaction) and the partitions for the
next `PARTITIONS_AHEAD` intervals. TimescaleDB creates chunks on insert: nothing to do there.
`plan_partitions` lists what a run would create, read-only, for `market-warehouse maintenance plan`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from market_warehouse.resources import clock, partitioning
from market_warehouse.resources.backend import Capabilities, engine_capabilities
from market_warehouse.resources.maintenance.pieces import Piece, composed, list_pieces
from market_warehouse.resources.models import TIMESERIES
from market_warehouse.resources.models.base import TimeseriesSpec
from market_warehouse.resources.sqlfiles import sql_text


@dataclass(frozen=True)
class PlannedPartition:
    """A partition a run would create; `rows_from_default` rows of DEFAULT would move into it."""

    table: str
    schema: str
    start: datetime
    end: datetime
    rows_from_default: int = 0

    @property
    def name(self) -> str:
        """The name `mw_ensure_partitions` gives it: <table>_pYYYYMMDD of its UTC start."""
        return f"{self.table}_p{self.start.astimezone(UTC):%Y%m%d}"

    def piece(self) -> Piece:
        """As the piece it will be once created (retention's plan considers it the same night)."""
        return Piece(self.table, self.schema, self.name, self.start, self.end)

    def record(self) -> dict[str, object]:
        return {
            "table": self.table,
            "partition": f"{self.schema}.{self.name}",
            "range_start": self.start.isoformat(),
            "range_end": self.end.isoformat(),
            "rows_from_default": self.rows_from_default,
        }


@dataclass
class PartitionResult:
    status: str
    created_ahead: dict[str, int] = field(default_factory=dict)
    created_for_default: dict[str, int] = field(default_factory=dict)
    moved_from_default: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def metadata(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.status,
            "partitions_created": sum(self.created_ahead.values()) + sum(self.created_for_default.values()),
            "rows_moved_from_default": sum(self.moved_from_default.values()),
            "seconds": round(self.seconds, 3),
        }
        for table in sorted(set(self.created_ahead) | set(self.created_for_default)):
            ahead, drained = self.created_ahead.get(table, 0), self.created_for_default.get(table, 0)
            if ahead or drained:
                out[f"{table}/created"] = ahead + drained
            if self.moved_from_default.get(table):
                out[f"{table}/moved_from_default"] = self.moved_from_default[table]
        return out


def manage_partitions(
    engine: sa.Engine, now: datetime | None = None, caps: Capabilities | None = None
) -> PartitionResult:
    """Create the partitions ahead of `now` and those DEFAULT rows belong in, for every time-series table."""
    caps = engine_capabilities(engine, caps)
    if not caps.native_partitions:
        return PartitionResult(status=f"chunks are created by TimescaleDB ({caps.backend.value})")
    began = time.perf_counter()
    now = now or clock.now()
    result = PartitionResult(status="done")
    for spec in TIMESERIES.values():
        with engine.begin() as conn:  # one table per transaction: its partition lock is held briefly
            result.created_ahead[spec.table] = partitioning.ensure_partitions(
                conn, caps, spec, *ahead_range(spec, now)
            )
            default = next((p for p in list_pieces(conn, caps, spec.table) if p.is_default), None)
            if default is None:
                continue
            before = _count(conn, default)
            if not before:
                continue
            created = 0
            for start, _ in _default_partition_starts(conn, spec, default):
                created += partitioning.ensure_partitions(conn, caps, spec, start, start)
            result.created_for_default[spec.table] = created
            result.moved_from_default[spec.table] = before - _count(conn, default)
    result.seconds = time.perf_counter() - began
    return result


def ahead_range(spec: TimeseriesSpec, now: datetime) -> tuple[datetime, datetime]:
    """The range whose partitions each run makes sure exist: one interval back, `PARTITIONS_AHEAD` ahead."""
    return now - spec.chunk_interval, now + partitioning.PARTITIONS_AHEAD * spec.chunk_interval


def plan_partitions(conn: sa.Connection, caps: Capabilities, now: datetime) -> list[PlannedPartition]:
    """The partitions `manage_partitions(now=now)` would create (none on TimescaleDB), changing nothing."""
    if not caps.native_partitions:
        return []
    planned: list[PlannedPartition] = []
    for spec in TIMESERIES.values():
        pieces = list_pieces(conn, caps, spec.table)
        existing = {p.start for p in pieces if not p.is_default}
        start, end = ahead_range(spec, now)
        params = {"from_ts": start, "to_ts": end, "every": spec.chunk_interval}
        new = dict.fromkeys(conn.execute(sql_text("postgres/partition_starts"), params).scalars(), 0)
        default = next((p for p in pieces if p.is_default), None)
        if default is None:  # every table gets one at migration; without it there is no schema to name
            continue
        new.update(_default_partition_starts(conn, spec, default))
        step = timedelta(seconds=spec.chunk_interval.total_seconds())
        planned += [
            PlannedPartition(spec.table, default.schema, begin, begin + step, rows)
            for begin, rows in sorted(new.items())
            if begin not in existing
        ]
    return planned


def _count(conn: sa.Connection, piece: Piece) -> int:
    return conn.exec_driver_sql(
        composed(conn, "common/piece_row_count", piece=(piece.schema, piece.name))
    ).scalar_one()


def _default_partition_starts(
    conn: sa.Connection, spec: TimeseriesSpec, default: Piece
) -> list[tuple[datetime, int]]:
    """(partition start, rows) for the rows sitting in DEFAULT."""
    stmt = composed(
        conn,
        "postgres/default_partition_starts",
        piece=(default.schema, default.name),
        time_column=spec.time_column,
    )
    return [(start, rows) for start, rows in conn.execute(sa.text(stmt), {"every": spec.chunk_interval})]
