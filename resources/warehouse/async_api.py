"""`AsyncWarehouse`: the storage API for asyncio trading loops (SQLAlchemy asyncio + asyncpg).

Same operations, same names and arguments as `Warehouse`, as coroutines. Each runs the very same function
of `resources.warehouse.queries` through `AsyncConnection.run_sync`: SQLAlchemy's greenlet bridge, the
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
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from resources.database import async_url, create_engine, normalize_url, redact, warehouse_url
from resources.settings import Settings
from resources.warehouse import queries as q
from resources.warehouse.api import reader_connections, unhealthy
from resources.warehouse.arrow_reads import ArrowReader
from resources.warehouse.records import Candle, Health, Trade
from resources.warehouse.upsert import AuditContext, UpsertResult, upsert_dataframe

P = ParamSpec("P")
R = TypeVar("R")


def _op(
    fn: Callable[Concatenate[sa.Connection, P], R],
) -> Callable[Concatenate[AsyncWarehouse, P], Coroutine[Any, Any, R]]:
    """An AsyncWarehouse coroutine method running `fn` in a transaction of its own."""

    async def method(self: AsyncWarehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    return q.as_method(fn, method)


def _read(
    fn: Callable[Concatenate[Any, P], R],
) -> Callable[Concatenate[AsyncWarehouse, P], Coroutine[Any, Any, R]]:
    """An AsyncWarehouse coroutine method running the read `fn` on the ArrowReader (ADBC) in a worker
    thread: ADBC decodes in C and releases the GIL, so the event loop stays free."""

    async def method(self: AsyncWarehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(fn, self.reader, *args, **kwargs)

    return q.as_method(fn, method)


def create_warehouse_async_engine(url: URL | str, **kwargs: Any) -> AsyncEngine:
    """An asyncpg engine on the warehouse; a Unix-socket URL (`?host=/socket/dir&port=N`) works as is."""
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("server_settings", {"application_name": "market-warehouse"})
    connect_args.setdefault("timeout", 10)
    return create_async_engine(async_url(normalize_url(url)), connect_args=connect_args, **kwargs)


class AsyncWarehouse:
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

    generate_correlation_id = staticmethod(q.generate_correlation_id)

    def _bulk_engine(self) -> sa.Engine:
        """The psycopg2 engine for bulk upserts, made on first use (in the worker thread: it connects)."""
        with self._sync_lock:
            if self._sync_engine is None:
                self._sync_engine = create_engine(self._sync_url, pool_size=2, max_overflow=2)
            return self._sync_engine

    def _upsert(self, table: str, to_frame: Callable[[Any], pd.DataFrame], data: Any, audit) -> UpsertResult:
        """Runs in the worker thread: building the frame from records is CPU work kept off the loop too."""
        return upsert_dataframe(self._bulk_engine(), table, to_frame(data), audit=audit)

    # --- OHLCV (seeds 000 and 004) ------------------------------------------------------------------------

    async def insert_ohlcv(
        self,
        candles: pd.DataFrame | Iterable[Candle | Mapping[str, Any]],
        *,
        audit: AuditContext | None = None,
    ) -> UpsertResult:
        """Upsert candles (see `Warehouse.insert_ohlcv`), in a worker thread; returns the `UpsertResult`."""
        return await asyncio.to_thread(self._upsert, "ohlcv", q.candles_frame, candles, audit)

    get_ohlcv = _read(q.get_ohlcv)
    get_ohlcv_frame = _read(q.get_ohlcv_frame)
    get_latest_ohlcv = _op(q.get_latest_ohlcv)
    get_latest_candles = _op(q.get_latest_candles)
    get_ohlcv_gaps = _op(q.get_ohlcv_gaps)
    get_price_stats = _op(q.get_price_stats)
    get_volume_profile = _op(q.get_volume_profile)

    # --- tape trades and order books (seed 000) -----------------------------------------------------------

    async def insert_market_trades(
        self, trades: pd.DataFrame | Iterable[Trade | Mapping[str, Any]], *, audit: AuditContext | None = None
    ) -> UpsertResult:
        """Upsert public trades (see `Warehouse.insert_market_trades`), in a worker thread."""
        return await asyncio.to_thread(self._upsert, "market_trades", q.trades_frame, trades, audit)

    get_market_trades = _op(q.get_market_trades)
    get_market_trades_frame = _read(q.get_market_trades_frame)
    get_features_frame = _read(q.get_features_frame)
    insert_orderbook_snapshot = _op(q.insert_orderbook_snapshot)
    get_orderbook_snapshots = _op(q.get_orderbook_snapshots)
    get_latest_orderbook = _op(q.get_latest_orderbook)

    # --- agents and signals (seed 000) --------------------------------------------------------------------

    log_agent_decision = _op(q.log_agent_decision)
    update_agent_decision = _op(q.update_agent_decision)
    get_agent_decisions = _op(q.get_agent_decisions)
    insert_signal = _op(q.insert_signal)
    get_signals = _op(q.get_signals)
    mark_signal_executed = _op(q.mark_signal_executed)
    close_signal = _op(q.close_signal)
    get_strategy_performance = _op(q.get_strategy_performance)

    # --- our fills and the trading loop's journal (seed 002) ----------------------------------------------

    log_trade = _op(q.log_trade)
    log_iteration = _op(q.log_iteration)
    log_audit_report = _op(q.log_audit_report)
    log_equity_snapshot = _op(q.log_equity_snapshot)
    log_risk_metrics = _op(q.log_risk_metrics)
    get_trade_history = _op(q.get_trade_history)
    get_equity_curve = _op(q.get_equity_curve)
    get_risk_metrics = _op(q.get_risk_metrics)

    # --- bot trades, positions, events (seed 004) ---------------------------------------------------------

    insert_bot_trade = _op(q.insert_bot_trade)
    update_bot_trade = _op(q.update_bot_trade)
    close_bot_trade = _op(q.close_bot_trade)
    get_bot_trade = _op(q.get_bot_trade)
    get_recent_bot_trades = _op(q.get_recent_bot_trades)
    get_bot_trades_by_symbol = _op(q.get_bot_trades_by_symbol)
    get_bot_trade_statistics = _op(q.get_bot_trade_statistics)
    open_position = _op(q.open_position)
    get_position = _op(q.get_position)
    get_open_positions = _op(q.get_open_positions)
    update_position = _op(q.update_position)
    close_position = _op(q.close_position)
    log_event = _op(q.log_event)
    get_recent_events = _op(q.get_recent_events)

    # --- administration -----------------------------------------------------------------------------------

    get_table_sizes = _op(q.get_table_sizes)

    async def health(self) -> Health:
        """See `Warehouse.health`: never raises; the latency is an asyncpg round trip."""
        try:
            async with self.engine.connect() as conn:
                return Health(**await conn.run_sync(q.health_details))
        except Exception as exc:  # a health check reports every failure instead of raising it
            return unhealthy(self.engine.url, exc)
