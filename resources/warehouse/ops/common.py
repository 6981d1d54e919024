"""What every storage operation shares: bounds, exact money, limits, row -> record fetches, errors.

The operations of `resources.warehouse.ops.<domain>` are functions of a sync SQLAlchemy `Connection`
(see `resources.warehouse.ops`); the helpers they have in common live here, once.
"""

from __future__ import annotations

import inspect
import os
import time as _time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa

from market_warehouse.resources.warehouse.arrow_reads import ArrowReader
from market_warehouse.resources.warehouse.records import (
    from_arrow,
    from_result,
    from_row,
    utc,
)

R = TypeVar("R")

# Where a read runs: the caller's connection (its transaction, its uncommitted writes), or the API's
# ArrowReader (ADBC, committed data, at wire speed) for the reads that accept one.
Source = sa.Connection | ArrowReader

# Bounds standing for "unbounded": inside the timestamptz range and representable by both drivers.
MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, tzinfo=UTC)


class NotFoundError(LookupError):
    """The row an update or close names does not exist."""


def bounds(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    lo, hi = utc(start) or MIN_TIME, utc(end) or MAX_TIME
    if lo > hi:
        raise ValueError(f"start {lo.isoformat()} is after end {hi.isoformat()}")
    return lo, hi


def money(value: Decimal | int | float | str | None) -> Decimal | None:
    """Exact amounts: floats go through their shortest repr, so 0.1 is stored as 0.1, not 0.1000000000000000055."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a money amount cannot be a bool")
    return Decimal(str(value))


def checked_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    return limit


def fetch_one(conn: sa.Connection, stmt: sa.Executable, cls: type[R]) -> R | None:
    row = conn.execute(stmt).mappings().first()
    return None if row is None else from_row(cls, row)


def fetch_all(conn: Source, stmt: sa.Executable, cls: type[R], params: Mapping | None = None) -> list[R]:
    if isinstance(conn, ArrowReader):
        return from_arrow(cls, conn.read(stmt, params or {}))
    return from_result(cls, conn.execute(stmt, params or {}))


def fetch_required(conn: sa.Connection, stmt: sa.Executable, cls: type[R], what: str) -> R:
    record = fetch_one(conn, stmt, cls)
    if record is None:
        raise NotFoundError(f"no {what}")
    return record


def as_method(fn: Callable, wrapper: Callable) -> Callable:
    """Give `wrapper` (a Warehouse method running `fn`) fn's name, docs and signature with `self` for `conn`."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__module__ = fn.__module__
    wrapper.__signature__ = signature.replace(parameters=[self_param, *params[1:]])
    return wrapper


def generate_correlation_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: unique like uuid4, and sortable by creation time.

    48 bits of Unix milliseconds, then 12 bits of sub-millisecond time (RFC 9562 method 3), so ids made in
    one process sort in creation order to ~250 ns; the remaining 62 bits are random.
    """
    ns = _time.time_ns()
    ms, sub = divmod(ns, 1_000_000)
    sub12 = sub * 4096 // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | sub12 << 64 | 0b10 << 62 | rand
    return f"{value:032x}"


def insert_record(conn: sa.Connection, model: type, cls: type[R], **values: Any) -> R:
    """Insert one row of `model` and return it as `cls`: the journals that hand the stored row back
    (decisions, signals, fills, bot trades, positions) with its id and server defaults."""
    table = model.__table__
    return fetch_one(conn, sa.insert(table).values(**values).returning(*table.c), cls)


def insert_id(conn: sa.Connection, model: type, **values: Any) -> int:
    """Insert one row of `model` and return its id: the append-only logs (iterations, audit reports, events)."""
    table = model.__table__
    return conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()


def series_rows(
    conn: sa.Connection,
    model: type,
    cls: type[R],
    where: Mapping[str, Any],
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    order: Sequence[str] = ("time",),
) -> list[R]:
    """Rows of `model` whose columns equal `where` (exchange, symbol, ...) with time in [start, end),
    ordered by `order`, at most `limit`."""
    lo, hi = bounds(start, end)
    t = model.__table__
    stmt = (
        sa.select(t)
        .where(*(t.c[name] == value for name, value in where.items()), t.c.time >= lo, t.c.time < hi)
        .order_by(*(t.c[name] for name in order))
        .limit(checked_limit(limit))
    )
    return fetch_all(conn, stmt, cls)
