"""SQL lives in `sql/` (one folder per backend plus `common/`); Python loads statements by name."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from resources.settings import SQL_DIR


@functools.cache
def load_sql(name: str) -> str:
    """Text of `sql/<name>.sql`, e.g. `load_sql("postgres/partitioning")`."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path.relative_to(SQL_DIR.parent)}")
    return path.read_text()


def sql_text(name: str) -> sa.TextClause:
    """A single statement from `sql/<name>.sql` with `:named` bind parameters."""
    return sa.text(load_sql(name))


def run_script(conn: sa.Connection, name: str) -> None:
    """Run a whole file (functions, several statements) in `conn`'s transaction.

    It goes straight to the DBAPI cursor without parameters, so `%` in PL/pgSQL `format()` stays literal.
    """
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(load_sql(name))
