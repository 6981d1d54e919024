"""`AsyncWarehouse`: the storage API for asyncio trading loops (SQLAlchemy asyncio + asyncpg).

Same operations, same names and arguments as `Warehouse`, as coroutines: both classes are generated from
`resources.warehouse.ops.OPERATIONS`. Each runs the very same function of `resources.warehouse.ops.<domain>`
through `AsyncConnection.run_sync`: SQLAlchemy's greenlet bridge, the
mechanism behind its whole asyncio extension, so every statement is awaited on asyncpg while the query text
and the row -> record mapping stay shared with the sync class.

Candle and tape-trade writes are the exception: they run the sync bulk upsert engine in a worker thread
(`asyncio.to_thread`) on a psycopg2 engine to the same database. Its COPY + one-statement upsert is bound
by the server, not the client, and re-implementing it on asyncpg's `copy_records_to_table` would fork the
hot path (validation, advisory locks, partition creation, dirty windows, change audit) into two versions
that could drift. The event loop is never blocked: psycopg2 releases the GIL while it waits.

The market-data reads (`get_ohlcv` and the frame reads) are the other exception, for the same reason: they
run the sync functions on the ADBC `ArrowReader` in a worker thread, as `Warehouse` does, instead of a
second, slower asyncpg path (one Python object per value).

    async with AsyncWarehouse.connect() as awh:
        candles = await awh.get_ohlcv("binance", "BTC/USDT", "1m", start, end)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from market_warehouse.resources.database import async_url, create_engine, normalize_url, redact, warehouse_url
from market_warehouse.resources.settings import Settings
from market_warehouse.resources.warehouse.api import reader_connections, unhealthy
from market_warehouse.resources.warehouse.arrow_reads import ArrowReader, ReaderUnavailable
from market_warehouse.resources.warehouse.ops import with_operations
from market_warehouse.resources.warehouse.ops.common import generate_correlation_id
from market_warehouse.resources.warehouse.ops.methods import AsyncWarehouseMethods
from market_warehouse.resources.warehouse.ops.operations import health_details
from market_warehouse.resources.warehouse.records import Health

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _in_transaction(
    fn: Callable[Concatenate[sa.Connection, P], R],
) -> Callable[Concatenate[AsyncWarehouse, P], Coroutine[Any, Any, R]]:
    """An AsyncWarehouse coroutine method running `fn` in a transaction of its own."""

    async def method(self: AsyncWarehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    return method


def _on_reader(
    fn: Callable[Concatenate[Any, P], R],
) -> Callable[Concatenate[AsyncWarehouse, P], Coroutine[Any, Any, R]]:
    """An AsyncWarehouse coroutine method running the read `fn` on the ArrowReader (ADBC) in a worker
    thread: ADBC decodes in C and releases the GIL, so the event loop stays free. Without an ADBC
    connection, on asyncpg in a transaction of its own (same results, slower; logged once)."""

    async def method(self: AsyncWarehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        if not self._reader_failed:
            try:
                return await asyncio.to_thread(fn, self.reader, *args, **kwargs)
            except ReaderUnavailable as exc:
                self._reader_failed = True
                log.warning("reads go through asyncpg, not ADBC: %s", exc)
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    return method


def _on_engine(
    fn: Callable[Concatenate[sa.Engine, P], R],
) -> Callable[Concatenate[AsyncWarehouse, P], Coroutine[Any, Any, R]]:
    """An AsyncWarehouse coroutine method running `fn` (a bulk upsert) in a worker thread on the psycopg2
    engine; building the frame from records is CPU work kept off the loop too."""

    async def method(self: AsyncWarehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(lambda: fn(self._bulk_engine(), *args, **kwargs))

    return method


def create_warehouse_async_engine(url: URL | str, **kwargs: Any) -> AsyncEngine:
    """An asyncpg engine on the warehouse; a Unix-socket URL (`?host=/socket/dir&port=N`) works as is."""
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("server_settings", {"application_name": "market-warehouse"})
    connect_args.setdefault("timeout", 10)
    return create_async_engine(async_url(normalize_url(url)), connect_args=connect_args, **kwargs)


@with_operations(transaction=_in_transaction, reader=_on_reader, engine=_on_engine)
class AsyncWarehouse(AsyncWarehouseMethods):  # the base declares the generated methods to type checkers
    """Async storage API over one `AsyncEngine`; use it from one event loop."""

    def __init__(self, engine: AsyncEngine | URL | str):
        if isinstance(engine, AsyncEngine):
            self.engine, self._owns_engine = engine, False
            self._sync_url = normalize_url(engine.url)
        else:
            self._sync_url = normalize_url(engine)
            self.engine, self._owns_engine = create_warehouse_async_engine(self._sync_url), True
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sync_engine: sa.Engine | None = None
        self._sync_lock = threading.Lock()
        self._reader: ArrowReader | None = None
        self._reader_failed = False

    @property
    def reader(self) -> ArrowReader:
        """The ADBC connections of the reads (`get_ohlcv`, the frame reads), opened on first use."""
        with self._sync_lock:
            if self._reader is None:
                self._reader = ArrowReader(self._sync_url, reader_connections())
            return self._reader

    @classmethod
    def connect(cls, settings: Settings | None = None) -> AsyncWarehouse:
        """The configured warehouse: `DATABASE_URL`, else the embedded server (started if needed, which
        blocks: call it at start-up, not inside a busy loop)."""
        return cls(warehouse_url(settings))

    async def close(self) -> None:
        """Dispose of the pools this object created (an engine passed in stays the caller's)."""
        with self._sync_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.to_thread(reader.close)
        if self._sync_engine is not None:
            await asyncio.to_thread(self._sync_engine.dispose)
            self._sync_engine = None
        if self._owns_engine:
            await self.engine.dispose()

    async def __aenter__(self) -> AsyncWarehouse:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncWarehouse({redact(self.engine.url)})"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An async ORM session in a transaction: committed when the block ends, rolled back if it raises."""
        async with self._sessions.begin() as session:
            yield session

    generate_correlation_id = staticmethod(generate_correlation_id)

    def _bulk_engine(self) -> sa.Engine:
        """The psycopg2 engine for bulk upserts, made on first use (in the worker thread: it connects)."""
        with self._sync_lock:
            if self._sync_engine is None:
                self._sync_engine = create_engine(self._sync_url, pool_size=2, max_overflow=2)
            return self._sync_engine

    async def health(self) -> Health:
        """See `Warehouse.health`: never raises; the latency is an asyncpg round trip."""
        try:
            async with self.engine.connect() as conn:
                return Health(**await conn.run_sync(health_details))
        except Exception as exc:  # a health check reports every failure instead of raising it
            return unhealthy(self.engine.url, exc)
