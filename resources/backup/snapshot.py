"""What a database holds, in a form two databases can be compared by: the backup manifest's core.

Why row counts and ordered checksums: a restore that "succeeded" (pg_restore exited 0) can still miss rows
(a parallel restore racing TimescaleDB's catalog, a COPY skipped on error, a wrong target). Counting rows
and hashing every row in primary-key order, in the same snapshot as the dump, and again after the restore,
proves the data came back bit for bit. Structure is compared too: partitions with their bounds on
PostgreSQL, hypertables with their chunk counts, continuous aggregates and columnstore settings on
TimescaleDB, since a table with the right rows but no partitions or no compression is not the same database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from psycopg2 import sql as pgsql

from market_warehouse.resources.sqlfiles import load_sql, run_script, sql_text

# Structure queries per backend kind; the TimescaleDB ones read timescaledb_information.
_COMMON_STRUCTURE = {"partitions": "backup/partitions"}
_TIMESCALEDB_STRUCTURE = {
    "hypertables": "backup/hypertables",
    "continuous_aggregates": "backup/continuous_aggregates",
    "compression_settings": "backup/compression_settings",
}


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str


@dataclass
class DatabaseState:
    """Versions, schema revision, per-relation rows and checksums, and structure of one database."""

    server_version: str
    timescaledb_version: str | None
    timescaledb_license: str | None
    schema_revision: str | None
    tables: dict[str, TableState] = field(default_factory=dict)
    structure: dict[str, list[list]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DatabaseState:
        tables = {name: TableState(**state) for name, state in data["tables"].items()}
        return cls(
            server_version=data["server_version"],
            timescaledb_version=data["timescaledb_version"],
            timescaledb_license=data["timescaledb_license"],
            schema_revision=data["schema_revision"],
            tables=tables,
            structure=data["structure"],
        )

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def snapshot(conn: sa.Connection) -> DatabaseState:
    """Read the state of the database behind `conn`, inside its current transaction (so a backup reads the
    exact snapshot its dump saw)."""
    run_script(conn, "backup/session")
    info = conn.execute(sql_text("common/backend_info")).mappings().one()
    state = DatabaseState(
        server_version=info["server_version"],
        timescaledb_version=info["timescaledb_version"],
        timescaledb_license=(info["timescaledb_license"] or "timescale")
        if info["timescaledb_version"]
        else None,
        schema_revision=_revision(conn),
    )
    for schema, name, order in _relations(conn, timescaledb=state.timescaledb_version is not None):
        state.tables[f"{schema}.{name}"] = table_state(conn, schema, name, order)
    queries = dict(_COMMON_STRUCTURE)
    if state.timescaledb_version:
        queries.update(_TIMESCALEDB_STRUCTURE)
    for key, name in queries.items():
        state.structure[key] = [list(row) for row in conn.execute(sql_text(name))]
    return state


def _revision(conn: sa.Connection) -> str | None:
    """Alembic revision when the database has an `alembic_version` table (the warehouse and Dagster's)."""
    if conn.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return None
    return MigrationContext.configure(conn).get_current_revision()


def _relations(conn: sa.Connection, timescaledb: bool) -> list[tuple[str, str, pgsql.Composable]]:
    """(schema, name, ORDER BY expression) of every table to checksum, plus continuous aggregates."""
    out = []
    for row in conn.execute(sql_text("backup/relations")).mappings():
        out.append((row["schema_name"], row["relation_name"], _order(row["key_columns"], row["collatable"])))
    if timescaledb:
        for row in conn.execute(sql_text("backup/continuous_aggregate_rows")).mappings():
            out.append((row["schema_name"], row["relation_name"], _order([], [])))
    return out


def _order(columns: list[str], collatable: list[bool]) -> pgsql.Composable:
    """Primary-key order (text keys in byte order, independent of the database collation); without a key,
    the row text itself in byte order, which is as exact and only slower."""
    if not columns:
        return pgsql.SQL('CAST(t AS text) COLLATE "C"')
    parts = [
        pgsql.SQL('{} COLLATE "C"' if c else "{}").format(pgsql.Identifier("t", name))
        for name, c in zip(columns, collatable, strict=True)
    ]
    return pgsql.SQL(", ").join(parts)


def table_state(conn: sa.Connection, schema: str, name: str, order: pgsql.Composable) -> TableState:
    """Row count and ordered checksum of one relation (call after `backup/session`)."""
    stmt = pgsql.SQL(load_sql("backup/table_checksum")).format(
        relation=pgsql.Identifier(schema, name), order=order
    )
    text = stmt.as_string(conn.connection.dbapi_connection)
    rows, checksum = conn.exec_driver_sql(text).one()
    return TableState(int(rows), checksum)


def compare(expected: DatabaseState, actual: DatabaseState) -> list[str]:
    """Every difference between a manifest's state and a restored database, one line each (empty: equal)."""
    problems = []
    for name in sorted(expected.tables.keys() | actual.tables.keys()):
        want, got = expected.tables.get(name), actual.tables.get(name)
        if got is None:
            problems.append(f"{name}: missing after restore")
        elif want is None:
            problems.append(f"{name}: not in the backup")
        elif want.rows != got.rows:
            problems.append(f"{name}: {got.rows:,} rows, backup has {want.rows:,}")
        elif want.checksum != got.checksum:
            problems.append(
                f"{name}: same row count ({got.rows:,}) but checksum {got.checksum} != {want.checksum}"
            )
    for key in sorted(expected.structure.keys() | actual.structure.keys()):
        if expected.structure.get(key) != actual.structure.get(key):
            problems.append(
                f"{key} differ: backup {expected.structure.get(key)!r}, restored {actual.structure.get(key)!r}"
            )
    if expected.schema_revision != actual.schema_revision:
        problems.append(f"schema revision {actual.schema_revision}, backup has {expected.schema_revision}")
    if expected.timescaledb_version != actual.timescaledb_version:
        problems.append(
            f"TimescaleDB {actual.timescaledb_version}, backup has {expected.timescaledb_version}"
        )
    return problems
