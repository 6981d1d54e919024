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
    return _with_includes(path.resolve(), root.resolve(), ())


# psql's "include relative to this file": a line `\ir fragment.sql` stands for that file's text, so a block two
# statements share (the cold-tier marker of the frame reads) is written once and each file still reads, and
# runs in psql, as the whole statement.
_INCLUDE = re.compile(r"^\\ir[ \t]+(\S+)[ \t]*$", re.MULTILINE)


def _with_includes(path: Path, root: Path, including: tuple[Path, ...]) -> str:
    """`path`'s text with each `\\ir` line replaced by the included file's own text (includes nest; a cycle
    or a missing file is an error naming the including file)."""
    if path in including:
        chain = " -> ".join(p.name for p in (*including, path))
        raise ValueError(f"SQL include cycle: {chain}")

    def include(match: re.Match[str]) -> str:
        target = (path.parent / match.group(1)).resolve()
        if not target.is_file():
            raise FileNotFoundError(
                f"{path.relative_to(root.parent)} includes {match.group(1)}: no such file"
            )
        return _with_includes(target, root, (*including, path)).rstrip("\n")

    return _INCLUDE.sub(include, path.read_text())


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
