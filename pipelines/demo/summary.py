"""What the demo reads back for its summary: rows per table, quarantine by rule, failed files, backend."""

from __future__ import annotations

import sqlalchemy as sa

from market_warehouse.pipelines.demo.report import AGGREGATE_TABLES, DemoReport
from market_warehouse.resources.models import Base


def table_rows(conn: sa.Connection) -> dict[str, int]:
    """Exact row counts (the demo's tables are small), including the 1h/1d aggregates."""
    counts = {}
    tables = [Base.metadata.tables[name] for name in sorted(Base.metadata.tables)]
    tables += [sa.table(name) for name in AGGREGATE_TABLES]
    for table in tables:
        with conn.begin_nested():
            try:
                counts[table.name] = int(conn.scalar(sa.select(sa.func.count()).select_from(table)))
            except sa.exc.ProgrammingError:
                continue  # an aggregate this backend does not have
    return counts


def quarantine_summary(conn: sa.Connection) -> list[tuple[str, str, str, int]]:
    q = Base.metadata.tables["quarantine"]
    source = sa.func.coalesce(q.c.source, "")
    rows = conn.execute(
        sa.select(q.c.table_name, q.c.rule, source, sa.func.count())
        .where(q.c.released_at.is_(None))
        .group_by(q.c.table_name, q.c.rule, source)
        .order_by(q.c.table_name, sa.func.count().desc())
    )
    return [(t, r, s, int(n)) for t, r, s, n in rows]


def failed_files(conn: sa.Connection) -> list[tuple[str, str]]:
    from market_warehouse.resources.files import ledger

    return [(e.path, e.error or "") for e in ledger.latest_entries(conn).values() if e.status == "failed"]


def collect(engine: sa.Engine, report: DemoReport) -> None:
    from market_warehouse.resources.backend import detect

    with engine.connect() as conn:
        report.capabilities = detect(conn).as_dict()
        report.table_rows = table_rows(conn)
        report.quarantine = quarantine_summary(conn)
        report.failed_files = failed_files(conn)
