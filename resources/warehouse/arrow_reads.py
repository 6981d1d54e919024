"""Reads at wire speed: query results as Arrow tables through the ADBC PostgreSQL driver.

The driver reads a result as PostgreSQL binary COPY and builds Arrow arrays in C, so a million candles
never become fifteen million Python objects (psycopg2 + SQLAlchemy + one record per row cost ~5x the time
the server needs). `benchmarks/pipeline.py` measured it against connectorx (slower on these results) and
against the ceiling, the bytes of the same binary COPY received and discarded.

Decoding the binary rows is then the client's bottleneck, so a large read is cut into parts — groups of
series, or time ranges of one series — read at the same time on as many connections: the decoding uses
every core and overlaps with the server producing the next rows.

The connections are the reader's own (a small pool, opened on first use): a read sees committed data, not
the uncommitted writes of a caller's transaction (read through that transaction's `sa.Connection` for
those). The URL's password reaches libpq only, never a log or a message.
"""

from __future__ import annotations

import functools
import numbers
import queue
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from market_warehouse.resources.database import normalize_url
from market_warehouse.resources.sqlfiles import without_comments

T = TypeVar("T")
# SQLAlchemy renders the `:name` parameters of the SQL files as `$1, $2, …` for this dialect.
_DOLLAR = postgresql.psycopg2.dialect(paramstyle="numeric_dollar")
_PLACEHOLDER = re.compile(r"\$(\d+)")
# The reader's sessions are pinned to what the literals below assume: UTF-8, and quotes as the only
# special character of a string literal.
_SESSION = {"client_encoding": "UTF8", "options": "-c standard_conforming_strings=on"}


def libpq_uri(url: URL | str) -> str:
    """The database URL as libpq reads it (a Unix socket stays in `?host=`), sessions pinned as above."""
    url = normalize_url(url).set(drivername="postgresql")
    query = dict(url.query)
    options = " ".join(o for o in (query.get("options"), _SESSION["options"]) if o)
    query |= {"client_encoding": _SESSION["client_encoding"], "options": options}
    # libpq decodes %XX but not '+' (SQLAlchemy's encoding of a space)
    pairs = "&".join(f"{quote(k)}={quote(str(v), safe='/')}" for k, v in query.items())
    return url.set(query={}).render_as_string(hide_password=False) + "?" + pairs


@functools.lru_cache(maxsize=256)
def _compiled(sql: str) -> tuple[str, tuple[str, ...]]:
    compiled = sa.text(without_comments(sql)).compile(dialect=_DOLLAR)  # statements not from sql_text too
    return str(compiled), tuple(compiled.positiontup or ())


def literal(value: Any) -> str:
    """A SQL literal of a parameter value. Strings double their quotes, which is complete with
    standard_conforming_strings on (the reader's sessions); only the types the reads bind are accepted."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character cannot be sent to PostgreSQL")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value.isoformat()}: timestamps must be timezone-aware (UTC)")
        return f"CAST('{value.isoformat()}' AS timestamptz)"
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a parameter type of the Arrow reads")


def render(statement: sa.TextClause, params: Mapping[str, Any]) -> str:
    """`statement` (`:name` parameters) with its parameters as literals.

    A statement without parameters is what ADBC reads as binary COPY (bound parameters take the slower
    extended protocol: +15 % on a million rows), and the planner sees the bounds as constants."""
    sql, names = _compiled(statement.text)
    values = [literal(params[name]) for name in names]
    return _PLACEHOLDER.sub(lambda m: values[int(m.group(1)) - 1], sql)


class ReaderUnavailable(RuntimeError):
    """No ADBC connection could be opened (driver missing, or a URL libpq cannot use as it is: e.g. an
    engine made with `creator=`); the message never contains the URL."""


class ArrowReader:
    """A pool of ADBC connections to one database; safe to share between threads."""

    def __init__(self, url: URL | str, connections: int = 2):
        if connections < 1:
            raise ValueError("an ArrowReader needs at least one connection")
        self.parallel = connections
        self._uri = libpq_uri(url)
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"ArrowReader(connections={self.parallel})"

    def _connection(self):
        """An idle (connection, cursor) pair, or a new one: the cursor is kept with its connection (an ADBC
        statement made per read costs ~0.2 ms of a 1,000-row read)."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise RuntimeError("the ArrowReader is closed")
            if self._opened < self.parallel:
                self._opened += 1
                opened = True
            else:
                opened = False
        if not opened:
            return self._idle.get()
        try:
            import adbc_driver_postgresql.dbapi as adbc

            connection = adbc.connect(self._uri, autocommit=True)
            return connection, connection.cursor()
        except Exception as exc:  # ImportError, or libpq refusing the URL: the caller may fall back
            with self._lock:
                self._opened -= 1
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ReaderUnavailable(f"{type(exc).__name__}: {reason.replace(self._uri, '<url>')}") from None

    def read(self, statement: sa.TextClause, params: Mapping[str, Any]) -> pa.Table:
        """The whole result of one statement (`render`)."""
        sql = render(statement, params)
        session = self._connection()
        cursor = session[1]
        try:
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
        except BaseException:
            _close(session)
            with self._lock:
                self._opened -= 1
            raise
        self._idle.put(session)
        return _without_driver_metadata(table)

    def read_parts(self, parts: Sequence[tuple[sa.TextClause, Mapping[str, Any]]]) -> list[pa.Table]:
        """Several statements at once on the pool's connections; results in the order given."""
        if len(parts) == 1 or self.parallel == 1:
            return [self.read(statement, params) for statement, params in parts]
        futures = [self.submit(self.read, statement, params) for statement, params in parts]
        return [future.result() for future in futures]

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """`fn(*args)` on the reader's worker threads: an independent read run meanwhile (e.g. the cold-tier
        manifest beside the candles). `fn` must not wait on other submitted work."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="mw-arrow-read")
            pool = self._pool
        return pool.submit(fn, *args)

    def close(self) -> None:
        """Close every connection (idle ones now; none may be in use)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        while True:
            try:
                _close(self._idle.get_nowait())
            except queue.Empty:
                return


def _close(session: tuple[Any, Any]) -> None:
    """Close a pool's (connection, cursor) pair: the cursor's statement first, then its connection."""
    connection, cursor = session
    try:
        cursor.close()
    finally:
        connection.close()


def _without_driver_metadata(table: pa.Table) -> pa.Table:
    """The driver tags each field with its PostgreSQL type; results carry plain fields."""
    schema = pa.schema([field.remove_metadata() for field in table.schema])
    return pa.Table.from_arrays(table.columns, schema=schema)
