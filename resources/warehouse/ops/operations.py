"""Operations on the system's own journals (`resources.models.operations`): trading-loop iterations,
audit reports, system events; and administration (table sizes, health).
"""

from __future__ import annotations

import time as _time
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.models import (
    AuditReportLog,
    IterationLog,
    SystemEvent,
)
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.ops.common import checked_limit, fetch_all, insert_id
from market_warehouse.resources.warehouse.records import (
    SystemEventRecord,
    TableSize,
    utc,
)

SEVERITIES = ("debug", "info", "warning", "error", "critical")


def log_iteration(
    conn: sa.Connection,
    correlation_id: str,
    iteration: int,
    phase: str,
    status: str,
    duration_ms: float | None = None,
    details: dict | None = None,
) -> int:
    """Log one phase of one trading-loop iteration; returns the row id."""
    return insert_id(
        conn,
        IterationLog,
        correlation_id=correlation_id,
        iteration=iteration,
        phase=phase,
        status=status,
        duration_ms=duration_ms,
        details=details or {},
    )


def log_audit_report(
    conn: sa.Connection,
    correlation_id: str,
    report_type: str,
    status: str,
    summary: str | None = None,
    findings: list | None = None,
) -> int:
    """Log the result of an audit report (reconciliation, data checks); returns the row id."""
    return insert_id(
        conn,
        AuditReportLog,
        correlation_id=correlation_id,
        report_type=report_type,
        status=status,
        summary=summary,
        findings=findings or [],
    )


def log_event(
    conn: sa.Connection,
    severity: str,
    source: str,
    event_type: str,
    message: str,
    *,
    component: str | None = None,
    details: dict | None = None,
    time: datetime | None = None,
) -> int:
    """Record an operational event; returns its id."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return insert_id(
        conn,
        SystemEvent,
        time=utc(time) or clock.now(),
        severity=severity,
        source=source,
        component=component,
        event_type=event_type,
        message=message,
        details=details or {},
    )


def get_recent_events(
    conn: sa.Connection,
    limit: int | None = 100,
    severity: str | None = None,
    min_severity: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
) -> list[SystemEventRecord]:
    """Newest events first; `severity` matches exactly, `min_severity='warning'` keeps warning and worse."""
    t = SystemEvent.__table__
    stmt = sa.select(t)
    if severity is not None:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        stmt = stmt.where(t.c.severity == severity)
    if min_severity is not None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {SEVERITIES}, not {min_severity!r}")
        stmt = stmt.where(t.c.severity.in_(SEVERITIES[SEVERITIES.index(min_severity) :]))
    if source is not None:
        stmt = stmt.where(t.c.source == source)
    if since is not None:
        stmt = stmt.where(t.c.time >= utc(since))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, SystemEventRecord)


def get_table_sizes(conn: sa.Connection) -> list[TableSize]:
    """Per warehouse table: kind (hypertable / partitioned / regular), estimated rows, bytes, chunks.

    The backend's `table_stats.sql` (the one `db info` starts from), read directly: the columnstore and time
    range details `db info` adds need psycopg2-composed SQL, which the asyncpg side cannot run.
    """
    from market_warehouse.resources.backend import detect
    from market_warehouse.resources.models import Base

    caps = detect(conn)
    stmt = sql_text(f"{caps.sql_folder}/table_stats")
    return fetch_all(conn, stmt, TableSize, {"tables": sorted(Base.metadata.tables)})


def health_details(conn: sa.Connection) -> dict[str, Any]:
    """One round trip timed, then the backend and the schema revision (see `Warehouse.health`)."""
    from alembic.runtime.migration import MigrationContext

    from market_warehouse.resources.backend import detect
    from market_warehouse.resources.schema import head_revision

    started = _time.perf_counter()
    conn.execute(sa.text("SELECT 1")).scalar_one()
    latency_ms = (_time.perf_counter() - started) * 1000
    caps = detect(conn)
    return {
        "ok": True,
        "latency_ms": latency_ms,
        "backend": caps.backend.value,
        "server_version": caps.server_version,
        "timescaledb_version": caps.timescaledb_version,
        "schema_revision": MigrationContext.configure(conn).get_current_revision(),
        "expected_revision": head_revision(),
    }
