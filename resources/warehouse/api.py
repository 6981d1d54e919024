"""`Warehouse`: the storage API a trading app or a notebook uses (SQLAlchemy 2 + psycopg2).

Each operation is one function of `resources.warehouse.queries` run in its own transaction
(`engine.begin()`: committed on success, rolled back on error). `AsyncWarehouse` exposes the same
operations under the same names, as coroutines. Candles and tape trades are written by the bulk upsert
engine, so writing the same rows again writes nothing. The market-data reads (`get_ohlcv`, and the frame
reads of candles, tape trades and features: one or many series per call, a DataFrame or an Arrow table)
go through `reader`, an ADBC connection pool (`resources.warehouse.arrow_reads`), at wire speed.

    from resources.warehouse.api import Warehouse

    with Warehouse.connect() as wh:                       # DATABASE_URL, else the embedded server
        wh.insert_ohlcv(frame)                            # DataFrame or Candle records
        candles = wh.get_ohlcv("binance", "BTC/USDT", "1h", start, end)
        stats = wh.get_price_stats("binance", "BTC/USDT", "1h", lookback=timedelta(days=1))
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from resources.database import create_engine, redact, warehouse_engine
from resources.settings import Settings
from resources.warehouse import queries as q
from resources.warehouse.arrow_reads import ArrowReader
from resources.warehouse.records import Candle, Health, Trade
from resources.warehouse.upsert import AuditContext, UpsertResult, upsert_dataframe

P = ParamSpec("P")
R = TypeVar("R")


def _op(fn: Callable[Concatenate[sa.Connection, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """A Warehouse method running `fn` in a transaction of its own."""

    def method(self: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    return q.as_method(fn, method)


def _read(fn: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Warehouse, P], R]:
    """A Warehouse method running the read `fn` through the API's ArrowReader (ADBC: committed data at
    wire speed; see `resources.warehouse.arrow_reads`)."""

    def method(self: Warehouse, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.reader, *args, **kwargs)

    return q.as_method(fn, method)


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


class Warehouse:
    """Sync storage API over one engine (a connection pool); safe to share between threads."""

    def __init__(self, engine: sa.Engine | URL | str):
        if isinstance(engine, sa.Engine):
            self.engine, self._owns_engine = engine, False
        else:
            self.engine, self._owns_engine = create_engine(engine), True
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader: ArrowReader | None = None
        self._reader_lock = threading.Lock()

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

    generate_correlation_id = staticmethod(q.generate_correlation_id)

    # --- OHLCV (seeds 000 and 004) ------------------------------------------------------------------------

    def insert_ohlcv(
        self,
        candles: pd.DataFrame | Iterable[Candle | Mapping[str, Any]],
        *,
        audit: AuditContext | None = None,
    ) -> UpsertResult:
        """Upsert candles (seed 004's `upsert_many`): new rows inserted, changed rows updated, identical rows
        left alone. Returns the upsert engine's `UpsertResult` (inserted / updated / unchanged counts)."""
        return upsert_dataframe(self.engine, "ohlcv", q.candles_frame(candles), audit=audit)

    get_ohlcv = _read(q.get_ohlcv)
    get_ohlcv_frame = _read(q.get_ohlcv_frame)
    get_latest_ohlcv = _op(q.get_latest_ohlcv)
    get_latest_candles = _op(q.get_latest_candles)
    get_ohlcv_gaps = _op(q.get_ohlcv_gaps)
    get_price_stats = _op(q.get_price_stats)
    get_volume_profile = _op(q.get_volume_profile)

    # --- tape trades and order books (seed 000) -----------------------------------------------------------

    def insert_market_trades(
        self, trades: pd.DataFrame | Iterable[Trade | Mapping[str, Any]], *, audit: AuditContext | None = None
    ) -> UpsertResult:
        """Upsert public trades keyed by (exchange, symbol, trade_id, time); returns the `UpsertResult`."""
        return upsert_dataframe(self.engine, "market_trades", q.trades_frame(trades), audit=audit)

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

    def health(self) -> Health:
        """Reachable? Round-trip latency, backend, and whether the schema is at this code's revision.

        Never raises: an unreachable server is `Health(ok=False, error=...)` (URL redacted).
        """
        try:
            with self.engine.connect() as conn:
                return Health(**q.health_details(conn))
        except Exception as exc:  # a health check reports every failure instead of raising it
            return unhealthy(self.engine.url, exc)
