"""SQL lives in `sql/` (one folder per backend plus `common/`); Python loads statements by name."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from market_warehouse.resources.settings import SQL_DIR


@functools.cache
def load_sql(name: str, root: Path = SQL_DIR) -> str:
    """Text of `<root>/<name>.sql`, e.g. `load_sql("postgres/partitioning")`.

    `root` is another folder of statements outside the product's `sql/` (the benchmarks keep theirs in
    `benchmarks/sql/`, so `sql/` holds only what the warehouse runs).
    """
    path = root / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path.relative_to(root.parent)}")
    return path.read_text()


def sql_text(name: str, root: Path = SQL_DIR, columns: Sequence[str] = ()) -> sa.TextClause:
    """A single statement from `<root>/<name>.sql` with `:named` bind parameters, its comments removed:
    SQLAlchemy binds a `:name` mentioned in a comment too, psycopg2 interpolates the value there, and a
    string with a newline would end the comment and run as SQL.

    `columns` fill the file's `{columns}` list (quoted identifiers), for a statement that reads whatever
    columns a model declares (the feature frames: a new feature adds no SQL edit).

    Built once per (name, root, columns): the comment stripping is a regex over the file (~0.1 ms, a
    noticeable part of a 1,000-row read); a TextClause is immutable to its users (its methods copy)."""
    return _statement(name, root, tuple(columns))


@functools.lru_cache(maxsize=1024)
def _statement(name: str, root: Path, columns: tuple[str, ...]) -> sa.TextClause:
    sql = without_comments(load_sql(name, root))
    if columns:
        if "{columns}" not in sql:
            raise ValueError(f"{name}.sql has no {{columns}} list to fill")
        sql = sql.replace("{columns}", ", ".join(quoted(c) for c in columns))
    return sa.text(sql)


def quoted(identifier: str) -> str:
    """A PostgreSQL identifier quoted (inner double quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


# A quoted literal (quotes doubled inside), or a `--` comment up to the end of its line.
_LITERAL_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def without_comments(sql: str) -> str:
    """`sql` without its `--` comments (quoted literals kept as they are)."""
    return _LITERAL_OR_COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith("'") else "", sql)


def run_script(conn: sa.Connection, name: str) -> None:
    """Run a whole file (functions, several statements) in `conn`'s transaction.

    It goes straight to the DBAPI cursor without parameters, so `%` in PL/pgSQL `format()` stays literal.
    """
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(load_sql(name))
