"""Time partitioning of time-series tables: hypertables on TimescaleDB, native range partitions elsewhere.

Both give the same behaviour to the rest of the code: inserts at any time succeed, old data can be dropped
by whole chunks or partitions, and queries by time prune to the relevant pieces.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.backend import Capabilities
from market_warehouse.resources.models.base import TimeseriesSpec
from market_warehouse.resources.sqlfiles import run_script, sql_text

# Partitions created ahead of "now" by the migration and the maintenance job.
PARTITIONS_AHEAD = 4


def table_kwargs(caps: Capabilities, time_column: str) -> dict:
    """`op.create_table` keyword arguments: declare range partitioning where partitions are native."""
    if caps.native_partitions:
        return {"postgresql_partition_by": f"RANGE ({time_column})"}
    return {}


def install_functions(conn: sa.Connection, caps: Capabilities) -> None:
    """Install the backend's helper functions (idempotent: CREATE OR REPLACE)."""
    if caps.native_partitions:
        run_script(conn, "postgres/partitioning")


def drop_functions(conn: sa.Connection, caps: Capabilities) -> None:
    if caps.native_partitions:
        run_script(conn, "postgres/drop_functions")


def prepare_table(conn: sa.Connection, caps: Capabilities, spec: TimeseriesSpec, now: datetime | None = None):
    """Make `spec.table` time-partitioned: a hypertable, or a default partition plus partitions ahead."""
    if caps.hypertables:
        conn.execute(
            sql_text("timescaledb/create_hypertable"),
            {
                "table_name": spec.table,
                "time_column": spec.time_column,
                "chunk_interval": spec.chunk_interval,
            },
        )
        return
    conn.execute(sql_text("postgres/ensure_default_partition"), {"table_name": spec.table})
    now = now or clock.now()
    ensure_partitions(
        conn, caps, spec, now - spec.chunk_interval, now + PARTITIONS_AHEAD * spec.chunk_interval
    )


def ensure_partitions(
    conn: sa.Connection, caps: Capabilities, spec: TimeseriesSpec, start: datetime, end: datetime
) -> int:
    """Create the native partitions covering [start, end]; TimescaleDB creates chunks by itself (0)."""
    if not caps.native_partitions:
        return 0
    params = {
        "table_name": spec.table,
        "time_column": spec.time_column,
        "every": spec.chunk_interval,
        "from_ts": start,
        "to_ts": end,
    }
    return conn.execute(sql_text("postgres/ensure_partitions"), params).scalar_one()
