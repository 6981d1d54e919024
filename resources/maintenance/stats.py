"""Warehouse statistics: per table its size, rows, chunks or partitions, compression ratio and time range.

The same numbers feed `market-warehouse db info` (`database_info`) and the `warehouse_stats` asset
(markdown table plus numeric metadata per table). `db info` lives here, not in a module of its own below
the maintenance package, because its details (time range, compression) are maintenance's knowledge.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from market_warehouse.resources.backend import Capabilities, detect
from market_warehouse.resources.maintenance.compression import compression_totals
from market_warehouse.resources.maintenance.pieces import composed, time_bounds
from market_warehouse.resources.maintenance.policy import COMPRESSIBLE_TABLES
from market_warehouse.resources.models import TIMESERIES, Base
from market_warehouse.resources.sqlfiles import sql_text

AGGREGATE_KINDS = ("rollup", "continuous aggregate")
ROLLUP_STORAGE = {"ohlcv_1h": ("mw_aggregates", "ohlcv_1h"), "ohlcv_1d": ("mw_aggregates", "ohlcv_1d")}


@dataclass(frozen=True)
class TableInfo:
    table_name: str
    kind: str  # hypertable / partitioned / regular
    row_estimate: int
    total_bytes: int
    pieces: int  # chunks or partitions
    # Filled by `with_details`: columnstore bytes before/after, exact time range.
    compression_ratio: float | None = None
    compressed_pieces: int | None = None
    oldest: datetime | None = None
    newest: datetime | None = None


@dataclass(frozen=True)
class DatabaseInfo:
    """What `market-warehouse db info` reports: the backend, its capabilities, and every table's shape."""

    capabilities: Capabilities
    schema_revision: str | None
    tables: list[TableInfo]


def database_info(engine: sa.Engine) -> DatabaseInfo:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        caps = detect(conn)
        revision = MigrationContext.configure(conn).get_current_revision()
        return DatabaseInfo(caps, revision, table_stats(conn, caps))


def table_stats(conn: sa.Connection, caps: Capabilities) -> list[TableInfo]:
    """Every table of the schema (size, rows, pieces) with its details, then the aggregates."""
    rows = conn.execute(
        sql_text(f"{caps.sql_folder}/table_stats"), {"tables": sorted(Base.metadata.tables)}
    ).mappings()
    return with_details(conn, caps, [TableInfo(**row) for row in rows])


def with_details(conn: sa.Connection, caps: Capabilities, tables: list[TableInfo]) -> list[TableInfo]:
    """Add time range (time-series tables) and compression ratio (columnstore), then the aggregates."""
    out = []
    for info in tables:
        spec = TIMESERIES.get(info.table_name)
        changes: dict[str, object] = {}
        if spec is not None:
            changes["oldest"], changes["newest"] = time_bounds(conn, caps, spec)
        if caps.compression and info.table_name in COMPRESSIBLE_TABLES:
            totals = compression_totals(conn, caps, info.table_name)
            if totals and totals["bytes_after"]:
                changes["compression_ratio"] = totals["bytes_before"] / totals["bytes_after"]
                changes["compressed_pieces"] = totals["compressed_chunks"]
        out.append(dataclasses.replace(info, **changes))
    return out + aggregate_stats(conn, caps)


def aggregate_stats(conn: sa.Connection, caps: Capabilities) -> list[TableInfo]:
    """`ohlcv_1h` / `ohlcv_1d` as continuous aggregates or rollups; nothing before migration 0003."""
    if not conn.execute(sql_text("common/aggregates_exist")).scalar_one():
        return []
    name = "timescaledb/continuous_aggregate_stats" if caps.continuous_aggregates else "common/rollup_stats"
    return [TableInfo(**row) for row in conn.execute(sql_text(name)).mappings()]


@dataclass
class WarehouseStats:
    tables: list[TableInfo]
    backend: str
    seconds: float

    def markdown(self) -> str:
        lines = [
            "| table | kind | rows~ | size | pieces | compression | oldest | newest |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for t in self.tables:
            ratio = f"{t.compression_ratio:.1f}x ({t.compressed_pieces})" if t.compression_ratio else ""
            lines.append(
                f"| {t.table_name} | {t.kind} | {t.row_estimate:,} | {human_bytes(t.total_bytes)} | {t.pieces} "
                f"| {ratio} | {_when(t.oldest)} | {_when(t.newest)} |"
            )
        return "\n".join(lines)

    def shown(self) -> list[TableInfo]:
        """The tables worth a line in a report: time-series tables, aggregates, other tables with rows."""
        return [
            t
            for t in self.tables
            if t.table_name in TIMESERIES or t.kind in AGGREGATE_KINDS or t.row_estimate
        ]

    def numeric(self) -> dict[str, float | int]:
        """Per table numbers for Dagster metadata plots: `<table>/rows`, `/bytes`, `/pieces`, `/compression_ratio`."""
        out: dict[str, float | int] = {}
        for t in self.shown():
            out[f"{t.table_name}/rows"] = t.row_estimate
            out[f"{t.table_name}/bytes"] = t.total_bytes
            out[f"{t.table_name}/pieces"] = t.pieces
            if t.compression_ratio:
                out[f"{t.table_name}/compression_ratio"] = round(t.compression_ratio, 3)
        out["total_bytes"] = sum(t.total_bytes for t in self.tables)
        return out


def collect_stats(engine: sa.Engine, analyze: bool = True) -> WarehouseStats:
    """Refresh planner statistics of the time-series tables and rollups (row estimates), then measure."""
    began = time.perf_counter()
    with engine.connect() as conn:
        caps = detect(conn)
        if analyze:
            _analyze(conn, caps)
            conn.commit()
        tables = table_stats(conn, caps)
    return WarehouseStats(tables=tables, backend=caps.backend.value, seconds=time.perf_counter() - began)


def _analyze(conn: sa.Connection, caps: Capabilities) -> None:
    targets: list[tuple[str, ...]] = [(name,) for name in TIMESERIES]
    if not caps.continuous_aggregates and conn.execute(sql_text("common/aggregates_exist")).scalar_one():
        targets += list(ROLLUP_STORAGE.values())
    for target in targets:
        conn.exec_driver_sql(composed(conn, "common/analyze_table", table=target))


def human_bytes(n: int) -> str:
    """A size for people (1536 -> '1.5 kB'): the one formatter of `db info`, the stats and the plan."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M") if ts else ""
