"""What `market-warehouse db info` reports: the backend, its capabilities, and every table's shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from resources.backend import Capabilities, detect
from resources.models import Base
from resources.sqlfiles import sql_text


@dataclass(frozen=True)
class TableInfo:
    table_name: str
    kind: str  # hypertable / partitioned / regular
    row_estimate: int
    total_bytes: int
    pieces: int  # chunks or partitions
    # Filled by resources.maintenance.stats: columnstore bytes before/after, exact time range.
    compression_ratio: float | None = None
    compressed_pieces: int | None = None
    oldest: datetime | None = None
    newest: datetime | None = None


@dataclass(frozen=True)
class DatabaseInfo:
    capabilities: Capabilities
    schema_revision: str | None
    tables: list[TableInfo]


def table_stats(conn: sa.Connection, caps: Capabilities) -> list[TableInfo]:
    rows = conn.execute(
        sql_text(f"{caps.sql_folder}/table_stats"), {"tables": sorted(Base.metadata.tables)}
    ).mappings()
    from resources.maintenance.stats import with_details  # it builds on this module

    return with_details(conn, caps, [TableInfo(**row) for row in rows])


def database_info(engine: sa.Engine) -> DatabaseInfo:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        caps = detect(conn)
        revision = MigrationContext.configure(conn).get_current_revision()
        return DatabaseInfo(caps, revision, table_stats(conn, caps))
