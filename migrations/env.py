"""Alembic environment: the warehouse URL comes from the project's settings (embedded server by default).

Callers that already hold a connection (tests, `market-warehouse migrate`) pass it in
`config.attributes["connection"]`. Partitions, TimescaleDB chunks and other objects the backend creates
for us are not part of the model and are hidden from autogenerate, so `alembic check` compares only what
the models declare.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from market_warehouse.resources.models import Base

config = context.config
target_metadata = Base.metadata


# Backend-specific aggregates of migration 0003: continuous aggregates or rollups, never in the models.
AGGREGATES = {"ohlcv_1h", "ohlcv_1d"}


def _backend_owned_tables(conn: sa.Connection) -> set[str]:
    rows = conn.execute(sa.text("SELECT relname FROM pg_class WHERE relispartition"))
    return {row[0] for row in rows} | AGGREGATES


def _include_name(hidden: set[str]):
    def include(name, type_, parent_names):
        if type_ == "table":
            return name not in hidden and name != "alembic_version"
        return True

    return include


def _run(conn: sa.Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        include_name=_include_name(_backend_owned_tables(conn)),
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _run(conn)
        return
    from market_warehouse.resources.database import warehouse_engine

    engine = warehouse_engine(poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: the DDL depends on the detected backend")
run_migrations_online()
