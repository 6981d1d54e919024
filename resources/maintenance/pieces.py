"""The pieces of a time-series table — TimescaleDB chunks or native partitions — as one list.

Retention drops whole pieces, compression converts whole pieces, and the stats read a table's oldest and
newest time from its first and last non-empty piece instead of scanning the table (the time column ends
the primary keys, so no index answers min(time) directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from psycopg2 import sql as pgsql

from market_warehouse.resources.backend import Capabilities
from market_warehouse.resources.models.base import TimeseriesSpec
from market_warehouse.resources.sqlfiles import load_sql, sql_text


@dataclass(frozen=True)
class Piece:
    """One chunk or partition; `start`/`end` are None for a DEFAULT partition (it has no range)."""

    table: str
    schema: str
    name: str
    start: datetime | None
    end: datetime | None
    compressed: bool = False
    is_default: bool = False

    @property
    def qualified(self) -> str:
        """`"schema"."name"`, quoted whatever the names contain, ready for a regclass cast."""
        return ".".join('"' + part.replace('"', '""') + '"' for part in (self.schema, self.name))

    def expired(self, cutoff: datetime) -> bool:
        """True when every row the piece can hold is older than `cutoff`."""
        return self.end is not None and self.end <= cutoff


def list_pieces(conn: sa.Connection, caps: Capabilities, table: str) -> list[Piece]:
    """Chunks (hypertables) or partitions (plain PostgreSQL) of `table`, DEFAULT first, then oldest first."""
    name = "timescaledb/list_chunks" if caps.hypertables else "postgres/list_partitions"
    rows = conn.execute(sql_text(name), {"table_name": table}).mappings()
    return [
        Piece(
            table=table,
            schema=row["schema_name"],
            name=row["relation_name"],
            start=row["range_start"],
            end=row["range_end"],
            compressed=bool(row["compressed"]),
            is_default=bool(row["is_default"]),
        )
        for row in rows
    ]


def piece_sizes(conn: sa.Connection, caps: Capabilities, table: str) -> dict[tuple[str, str], int]:
    """Bytes on disk per piece of `table`, keyed by (schema, name); a compressed chunk counts both parts.

    Read apart from `list_pieces` because only the plan and retention's records need it.
    """
    name = "timescaledb/chunk_sizes" if caps.hypertables else "postgres/partition_sizes"
    rows = conn.execute(sql_text(name), {"table_name": table}).mappings()
    return {(row["schema_name"], row["relation_name"]): int(row["total_bytes"] or 0) for row in rows}


def composed(conn: sa.Connection, name: str, **identifiers: str | tuple[str, ...]) -> str:
    """`sql/<name>.sql` with its `{placeholders}` replaced by quoted identifiers (psycopg2.sql).

    For statements whose table or column is only known at run time; values still go as bind parameters.
    """
    parts = {
        key: pgsql.Identifier(*value) if isinstance(value, tuple) else pgsql.Identifier(value)
        for key, value in identifiers.items()
    }
    return pgsql.SQL(load_sql(name)).format(**parts).as_string(conn.connection.dbapi_connection)


def _bounds(conn: sa.Connection, piece: Piece, time_column: str) -> tuple[datetime | None, datetime | None]:
    stmt = composed(
        conn, "common/piece_time_bounds", piece=(piece.schema, piece.name), time_column=time_column
    )
    row = conn.exec_driver_sql(stmt).one()
    return row[0], row[1]


def time_bounds(
    conn: sa.Connection, caps: Capabilities, spec: TimeseriesSpec
) -> tuple[datetime | None, datetime | None]:
    """Exact (oldest, newest) time of `spec.table`, reading only the first and last non-empty pieces."""
    pieces = list_pieces(conn, caps, spec.table)
    oldest = newest = None
    for piece in (p for p in pieces if p.is_default):
        oldest, newest = _bounds(conn, piece, spec.time_column)
    ranged = [p for p in pieces if not p.is_default]
    for piece in ranged:
        if oldest is not None and piece.start is not None and piece.start >= oldest:
            break
        low, _ = _bounds(conn, piece, spec.time_column)
        if low is not None:
            oldest = low if oldest is None else min(oldest, low)
            break
    for piece in reversed(ranged):
        if newest is not None and piece.end is not None and piece.end <= newest:
            break
        _, high = _bounds(conn, piece, spec.time_column)
        if high is not None:
            newest = high if newest is None else max(newest, high)
            break
    return oldest, newest
