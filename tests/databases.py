"""Scratch databases of the test session: the migrated template and per-test copies made from it.

A helper module, not conftest: tests that build their own database (a module-scoped one, or one per
subprocess) import these from here; conftest's fixtures use the same functions.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from psycopg2 import sql as pgsql
from sqlalchemy.engine import URL

from market_warehouse.resources.database import create_engine, normalize_url

TEMPLATE_DB = "mw_template"
BACKEND_URL_ENV = {"timescaledb": "TIMESCALEDB_URL", "timescaledb-apache": "TIMESCALEDB_APACHE_URL"}


def _admin_execute(url: URL, statement: pgsql.Composable) -> None:
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement.as_string(conn.connection.dbapi_connection))
    finally:
        admin.dispose()


def create_database(url: URL, name: str, template: str | None = None) -> URL:
    stmt = pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name))
    if template:
        stmt = pgsql.SQL("{} TEMPLATE {}").format(stmt, pgsql.Identifier(template))
    _admin_execute(url, stmt)
    return url.set(database=name)


def timescaledb_server_url(backend: str) -> URL:
    """Server URL for a TimescaleDB backend, or skip the test saying which variable is missing."""
    env = BACKEND_URL_ENV[backend]
    raw = os.environ.get(env)
    if not raw:
        pytest.skip(
            f"{backend} tests need a server: set {env} (e.g. postgresql://postgres@host:5432/postgres)"
        )
    return normalize_url(raw)
