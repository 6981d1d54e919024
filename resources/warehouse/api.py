"""`Warehouse`: the storage API a trading app or a notebook uses (SQLAlchemy 2 + psycopg2).

Its methods are generated from `resources.warehouse.ops.OPERATIONS`: each runs one function of
`resources.warehouse.ops.<domain>` in its own transaction (`engine.begin()`: committed on success, rolled
back on error), on the ADBC reader, or on the engine (bulk upserts). `AsyncWarehouse` exposes the same
operations under the same names, as coroutines. Candles and tape trades are written by the bulk upsert
engine, so writing the same rows again writes nothing. The market-data reads (`get_ohlcv`, and the frame
reads of candles, tape trades and features: one or many series per call, a DataFrame or an Arrow table)
go through `reader`, an ADBC connection pool (`resources.warehouse.arrow_reads`), at wire speed.

    from market_warehouse.resources.warehouse.api import Warehouse

    with Warehouse.connect() as wh:                       # DATABASE_URL, else the embedded server
        wh.insert_ohlcv(frame)                            # DataFrame or Candle records
        candles = wh.get_ohlcv("binance", "BTC/USDT", "1h", start, end)
        stats = wh.get_price_stats("binance", "BTC/USDT", "1h", lookback=timedelta(days=1))
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from market_warehouse.resources.database import create_engine, redact, warehouse_engine
from market_warehouse.resources.settings import Settings
from market_warehouse.resources.warehouse.arrow_reads import ArrowReader, ReaderUnavailable
from market_warehouse.resources.warehouse.ops import with_operations
from market_warehouse.resources.warehouse.ops.common import generate_correlation_id
from market_warehouse.resources.warehouse.ops.methods import WarehouseMethods
from market_warehouse.resources.warehouse.ops.operations import health_details
from market_warehouse.resources.warehouse.records import Health

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _in_transaction(fn: Callable[Concatenate[sa.Connection, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """A Warehouse method running `fn` in a transaction of its own."""

    def method(self: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    return method


def _on_reader(fn: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """A Warehouse method running the read `fn` through the API's ArrowReader (ADBC: committed data at
    wire speed; see `resources.warehouse.arrow_reads`), or, when no ADBC connection can be opened, in a
    transaction of the engine like any other operation (same results, slower; logged once)."""

    def method(self: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        if not self._reader_failed:
            try:
                return fn(self.reader, *args, **kwargs)
            except ReaderUnavailable as exc:
                self._reader_failed = True
                log.warning("reads go through the engine, not ADBC: %s", exc)
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    return method


def _on_engine(fn: Callable[Concatenate[sa.Engine, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """A Warehouse method running `fn` (a bulk upsert: its own transactions per batch) on the engine."""

    def method(self: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.engine, *args, **kwargs)

    return method


def reader_connections() -> int:
    """Connections of an API's ArrowReader: one per core (large reads are decoded in parallel), 2 to 4."""
    return max(2, min(4, os.cpu_count() or 2))


def failure_reason(exc: BaseException) -> str:
    """The first line of a driver error, without the URL (which may hold a password)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else 'no message'}"


def unhealthy(url: URL, exc: BaseException) -> Health:
    return Health(
        ok=False,
        latency_ms=None,
        backend=None,
        server_version=None,
        timescaledb_version=None,
        schema_revision=None,
        expected_revision=None,
        error=f"cannot query {redact(url)}: {failure_reason(exc)}",
    )


@with_operations(transaction=_in_transaction, reader=_on_reader, engine=_on_engine)
class Warehouse(WarehouseMethods):  # the base declares the generated methods to type checkers
    """Sync storage API over one engine (a connection pool); safe to share between threads."""

    def __init__(self, engine: sa.Engine | URL | str):
        if isinstance(engine, sa.Engine):
            self.engine, self._owns_engine = engine, False
        else:
            self.engine, self._owns_engine = create_engine(engine), True
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader: ArrowReader | None = None
        self._reader_lock = threading.Lock()
        self._reader_failed = False

    @property
    def reader(self) -> ArrowReader:
        """The ADBC connections of the reads (`get_ohlcv`, the frame reads), opened on first use."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = ArrowReader(self.engine.url, reader_connections())
            return self._reader

    @classmethod
    def connect(cls, settings: Settings | None = None) -> Warehouse:
        """The configured warehouse: `DATABASE_URL`, else the embedded server (started if needed)."""
        warehouse = cls(warehouse_engine(settings))
        warehouse._owns_engine = True
        return warehouse

    def close(self) -> None:
        """Close the readers' connections, and dispose of the pool if this object created it (an engine
        passed in stays the caller's)."""
        with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({redact(self.engine.url)})"

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    generate_correlation_id = staticmethod(generate_correlation_id)

    def health(self) -> Health:
        """Reachable? Round-trip latency, backend, and whether the schema is at this code's revision.

        Never raises: an unreachable server is `Health(ok=False, error=...)` (URL redacted).
        """
        try:
            with self.engine.connect() as conn:
                return Health(**health_details(conn))
        except Exception as exc:  # a health check reports every failure instead of raising it
            return unhealthy(self.engine.url, exc)
