"""Scratch databases of the test session: the migrated template and per-test copies made from it.

A helper module, not conftest: tests that build their own database (a module-scoped one, or one per
subprocess) import these from here; conftest's fixtures use the same functions.
"""

from __future__ import annotations

import sqlalchemy as sa
from psycopg2 import sql as pgsql
from sqlalchemy.engine import URL

from resources.database import create_engine

TEMPLATE_DB = "mw_template"


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
