"""Every storage operation, written once as a function of a sync SQLAlchemy `Connection`.

`Warehouse` runs these in `engine.begin()`; `AsyncWarehouse` runs the very same functions on asyncpg through
`AsyncConnection.run_sync` (SQLAlchemy's own bridge: the statements are awaited on the event loop, the
function just does not see it). So each query and each row -> record mapping exists once, and a caller
holding a connection (a Dagster asset, a script) can call them inside its own transaction.

Analytical SQL lives in `sql/common/*.sql`; inserts and updates are SQLAlchemy Core on the models, so
column names come from the schema rather than from strings. Parameters of the SQL files are always bound
(time bounds default to the ends of the timestamptz range rather than NULL) so asyncpg can type them and
the planner can prune partitions.

Writes: market data (candles, tape trades) go through the bulk upsert engine (`resources.warehouse.upsert`)
and are idempotent; order books, equity and risk snapshots are upserts on their natural key; decisions,
signals, fills, events and logs are append-only journals with identity ids.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from resources import clock
from resources.columns import arrow_type, kind_of
from resources.intervals import interval_to_timedelta, validate_interval
from resources.models import (
    AgentDecision,
    AuditReportLog,
    Base,
    BotTrade,
    EquityCurve,
    IterationLog,
    Position,
    RiskMetric,
    SystemEvent,
    TradeHistory,
    TradingSignal,
)
from resources.models import MarketTrade as MarketTradeModel
from resources.models import OrderbookSnapshot as OrderbookModel
from resources.sqlfiles import sql_text
from resources.warehouse.aggregates import aggregate_query
from resources.warehouse.arrow_reads import ArrowReader
from resources.warehouse.records import (
    AgentDecisionRecord,
    BotTradeRecord,
    Candle,
    EquityPoint,
    Gap,
    OrderBookSnapshot,
    PositionRecord,
    PriceStats,
    RiskSnapshot,
    Signal,
    StrategyPerformance,
    SystemEventRecord,
    TableSize,
    Trade,
    TradeFill,
    TradeStatistics,
    VolumeLevel,
    frame_from_arrow,
    from_arrow,
    from_result,
    from_row,
    to_frame,
    utc,
)

R = TypeVar("R")
# Where a read runs: the caller's connection (its transaction, its uncommitted writes), or the API's
# ArrowReader (ADBC, committed data, at wire speed) for the reads that accept one.
Source = sa.Connection | ArrowReader

# Bounds standing for "unbounded": inside the timestamptz range and representable by both drivers.
MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, tzinfo=UTC)

SEVERITIES = ("debug", "info", "warning", "error", "critical")


class NotFoundError(LookupError):
    """The row an update or close names does not exist."""


# --- helpers ----------------------------------------------------------------------------------------------


def _bounds(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    lo, hi = utc(start) or MIN_TIME, utc(end) or MAX_TIME
    if lo > hi:
        raise ValueError(f"start {lo.isoformat()} is after end {hi.isoformat()}")
    return lo, hi


def _now() -> datetime:
    return clock.now()


def _money(value: Decimal | int | float | str | None) -> Decimal | None:
    """Exact amounts: floats go through their shortest repr, so 0.1 is stored as 0.1, not 0.1000000000000000055."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a money amount cannot be a bool")
    return Decimal(str(value))


def _limit(limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    return limit


def _one(conn: sa.Connection, stmt: sa.Executable, cls: type[R]) -> R | None:
    row = conn.execute(stmt).mappings().first()
    return None if row is None else from_row(cls, row)


def _all(conn: Source, stmt: sa.Executable, cls: type[R], params: Mapping | None = None) -> list[R]:
    if isinstance(conn, ArrowReader):
        return from_arrow(cls, conn.read(stmt, params or {}))
    return from_result(cls, conn.execute(stmt, params or {}))


def _required(conn: sa.Connection, stmt: sa.Executable, cls: type[R], what: str) -> R:
    record = _one(conn, stmt, cls)
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


# --- OHLCV ------------------------------------------------------------------------------------------------


def _records(items: Iterable[Any], cls: type) -> list:
    items = list(items)
    return [item if isinstance(item, cls) else cls(**item) for item in items]


def candles_frame(candles: pd.DataFrame | Iterable[Candle | Mapping[str, Any]]) -> pd.DataFrame:
    """The frame the upsert engine takes, from a DataFrame (passed through) or Candle records / dicts."""
    if isinstance(candles, pd.DataFrame):
        return candles
    return to_frame(_records(candles, Candle), Candle)


def trades_frame(trades: pd.DataFrame | Iterable[Trade | Mapping[str, Any]]) -> pd.DataFrame:
    """The frame the upsert engine takes for `market_trades`."""
    if isinstance(trades, pd.DataFrame):
        return trades
    frame = to_frame(_records(trades, Trade), Trade)
    frame["is_buyer_maker"] = frame["is_buyer_maker"].astype("boolean")  # nullable: not every venue says
    return frame


def _ohlcv_params(exchange, symbol, interval, start, end, limit) -> dict[str, Any]:
    lo, hi = _bounds(start, end)
    return {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "start": lo,
        "end": hi,
        "limit": _limit(limit),
    }


OhlcvSource = Literal["auto", "stored", "aggregate"]


def _ohlcv_statement(conn: Source, params: Mapping[str, Any], source: OhlcvSource) -> sa.TextClause:
    """Where candles of an interval come from: stored candles, or the 1h/1d aggregate of the 1m candles.

    "auto" reads the stored candles when the series has any in the range (an exchange's own 1h candles are
    the reference) and the aggregate otherwise; "stored"/"aggregate" force one side.
    """
    stored = sql_text("common/get_ohlcv")
    if source == "stored":
        return stored
    aggregate = aggregate_query(params["interval"])
    if aggregate is None:
        if source == "aggregate":
            raise ValueError(
                f"no aggregate serves interval {params['interval']!r}: only '1h' and '1d' have one"
            )
        return stored
    if source == "aggregate":
        return aggregate
    return stored if _stored_symbols(conn, params, [params["symbol"]]) else aggregate


def get_ohlcv(
    conn: Source,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    source: OhlcvSource = "auto",
) -> list[Candle]:
    """Candles of one series in time order (seed 004's `get_range`); '1h'/'1d' fall back to the aggregates
    when no such candles are stored (see `_ohlcv_statement`). Bounds as in `sql/common/get_ohlcv.sql`."""
    params = _ohlcv_params(exchange, symbol, interval, start, end, limit)
    return _all(conn, _ohlcv_statement(conn, params, source), Candle, params)


def get_ohlcv_frame(
    conn: Source,
    exchange: str,
    symbol: str | Sequence[str],
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    source: OhlcvSource = "auto",
    *,
    as_arrow: bool = False,
) -> pd.DataFrame | pa.Table:
    """Candles of one series, or of many in one query (`symbol` a list; ordered by symbol then time,
    `limit` per series), as a DataFrame typed like `to_frame(get_ohlcv(...))` or, with `as_arrow=True`, an
    Arrow table of the stored types (no pandas). Bounds and sources as in `get_ohlcv`; the Warehouse API
    reads it through ADBC (see `resources.warehouse.arrow_reads`), several parts at once when large."""
    symbols = _symbols(symbol)
    params = _ohlcv_params(exchange, symbols[0], interval, start, end, limit)
    stored, aggregated = _ohlcv_sources(conn, params, symbols, source)
    schema = _read_schema("ohlcv", _OHLCV_COLUMNS)
    tables = _read_series(conn, "common/get_ohlcv_frame", params, stored, schema) if stored else []
    for one in aggregated:
        statement = aggregate_query(params["interval"])
        tables.append(_fetch(conn, statement, {**params, "symbol": one}, schema))
    table = _concat(tables, schema)
    if stored and aggregated:
        table = table.sort_by([("symbol", "ascending"), ("time", "ascending")])
    return table if as_arrow else frame_from_arrow(table)


_OHLCV_COLUMNS = (
    "exchange",
    "symbol",
    "interval",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades_count",
    "vwap",
    "quality_score",
    "is_anomaly",
    "source",
)
# A read of one series is cut into time ranges (read at once) when it may hold more rows than this.
_SPLIT_ROWS = 50_000


def _symbols(symbol: str | Sequence[str]) -> list[str]:
    symbols = [symbol] if isinstance(symbol, str) else sorted(set(symbol))
    if not symbols:
        raise ValueError("no symbol given")
    return symbols


def _ohlcv_sources(
    conn: Source, params: Mapping[str, Any], symbols: list[str], source: OhlcvSource
) -> tuple[list[str], list[str]]:
    """The symbols read from stored candles and those read from the aggregate (see `_ohlcv_statement`)."""
    if source == "stored" or aggregate_query(params["interval"]) is None:
        _ohlcv_statement(conn, params, source)  # refuses source="aggregate" without an aggregate
        return symbols, []
    if source == "aggregate":
        return [], symbols
    have = _stored_symbols(conn, params, symbols)
    return [s for s in symbols if s in have], [s for s in symbols if s not in have]


def _stored_symbols(conn: Source, params: Mapping[str, Any], symbols: list[str]) -> set[str]:
    query = sql_text("common/ohlcv_exists_many")
    return set(_fetch(conn, query, {**params, "symbols": symbols}).column(0).to_pylist())


def _read_schema(table: str, columns: Sequence[str]) -> pa.Schema:
    """The Arrow types of `columns` of a model table, as the reads return them."""
    model = Base.metadata.tables[table].c
    return pa.schema([pa.field(c, arrow_type(kind_of(model[c]), large_text=False)) for c in columns])


def _fetch(
    conn: Source, statement: sa.TextClause, params: Mapping[str, Any], schema: pa.Schema | None = None
):
    """One statement's result as an Arrow table: through the reader (ADBC), or the caller's connection."""
    if isinstance(conn, ArrowReader):
        table = conn.read(statement, params)
    else:
        result = conn.execute(statement, params)
        keys, rows = list(result.keys()), result.all()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
        types = {f.name: f.type for f in schema} if schema is not None else {}
        table = pa.table(
            {k: pa.array(list(v), type=types.get(k)) for k, v in zip(keys, columns, strict=True)}
        )
    return _conform(table, schema)


def _conform(table: pa.Table, schema: pa.Schema | None) -> pa.Table:
    """Columns of `schema` cast to its types (a NULL-only column, an expression's type); others as read."""
    if schema is None:
        return table
    for i, name in enumerate(table.column_names):
        if name in schema.names and table.schema.field(i).type != schema.field(name).type:
            table = table.set_column(i, schema.field(name), table.column(i).cast(schema.field(name).type))
    return table


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not tables:
        return schema.empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def _read_series(
    conn: Source,
    query: str,
    params: Mapping[str, Any],
    symbols: list[str],
    schema: pa.Schema,
    step: timedelta | None = None,
) -> list[pa.Table]:
    """Rows of `symbols` ordered by symbol then time (`query`; `query`_limit for a limit per series of many).

    Through an ArrowReader, a read of several series is cut into groups of series, and a long bounded
    range of one series (without limit) into time ranges, read at once; concatenated in order."""
    per_series = params["limit"] is not None and len(symbols) > 1
    statement = sql_text(query + ("_limit" if per_series else ""))
    parts = [{**params, "symbols": symbols}]
    if isinstance(conn, ArrowReader) and conn.parallel > 1:
        if len(symbols) > 1:
            groups = np.array_split(np.array(symbols, dtype=object), min(conn.parallel, len(symbols)))
            parts = [{**params, "symbols": list(group)} for group in groups]
        elif _splittable(params, step or _step(params)):
            cuts = pd.date_range(params["start"], params["end"], periods=conn.parallel + 1)
            bounds = [params["start"], *(c.to_pydatetime() for c in cuts[1:-1]), params["end"]]
            parts = [
                {**parts[0], "start": a, "end": b} for a, b in zip(bounds[:-1], bounds[1:], strict=False)
            ]
    if len(parts) == 1:
        tables = [_fetch(conn, statement, parts[0], schema)]
    else:
        tables = [_conform(t, schema) for t in conn.read_parts([(statement, p) for p in parts])]
    return [_with_constants(table, params, schema) for table in tables]


def _with_constants(table: pa.Table, params: Mapping[str, Any], schema: pa.Schema) -> pa.Table:
    """`table` in `schema`'s column order, the columns it lacks being the query's constants (exchange,
    interval, …: the frame queries do not send them once per row). A one-value dictionary, cast: 20x
    faster than pa.repeat for strings."""
    zeros = pa.array(np.zeros(table.num_rows, dtype=np.int32))
    columns = [
        table.column(f.name)
        if f.name in table.column_names
        else pa.DictionaryArray.from_arrays(zeros, pa.array([params[f.name]], f.type)).cast(f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _step(params: Mapping[str, Any]) -> timedelta | None:
    try:
        return interval_to_timedelta(params["interval"]) if "interval" in params else None
    except ValueError:
        return None


def _splittable(params: Mapping[str, Any], step: timedelta | None) -> bool:
    """A caller-bounded range without limit that may hold more than _SPLIT_ROWS rows (interval known)."""
    if params["limit"] is not None or step is None:
        return False
    if params["start"] == MIN_TIME or params["end"] == MAX_TIME:
        return False
    return (params["end"] - params["start"]) / step > _SPLIT_ROWS


def get_latest_candles(
    conn: sa.Connection, exchange: str, symbol: str, interval: str, limit: int = 100
) -> list[Candle]:
    """The newest `limit` candles of a series, in time order (seed 004's `get_latest`)."""
    params = {"exchange": exchange, "symbol": symbol, "interval": validate_interval(interval)}
    rows = _all(conn, sql_text("common/latest_ohlcv"), Candle, {**params, "limit": _limit(limit)})
    return rows[::-1]


def get_latest_ohlcv(conn: sa.Connection, exchange: str, symbol: str, interval: str) -> Candle | None:
    """The newest candle of a series, or None (seed 000's latest OHLCV)."""
    latest = get_latest_candles(conn, exchange, symbol, interval, limit=1)
    return latest[0] if latest else None


def get_ohlcv_gaps(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Gap]:
    """Runs of missing candles among open times in [start, end); without a bound, that edge is not checked."""
    step = interval_to_timedelta(interval)
    lo, hi = _bounds(start, end)
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": interval,
        "start": lo,
        "end": hi,
        "step": step,
        "bounded_start": start is not None,
        "bounded_end": end is not None,
    }
    return _all(conn, sql_text("common/ohlcv_gaps"), Gap, params)


def get_price_stats(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    lookback: timedelta = timedelta(hours=24),
    end: datetime | None = None,
) -> PriceStats:
    """Mean, std, min, max, current close and count over the candles opened in [end - lookback, end)."""
    hi = utc(end) or _now()
    lo = hi - lookback
    params = {"exchange": exchange, "symbol": symbol, "interval": validate_interval(interval)}
    row = conn.execute(sql_text("common/price_stats"), {**params, "start": lo, "end": hi}).mappings().one()
    return from_row(PriceStats, {**row, **params, "start": lo, "end": hi})


def get_volume_profile(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    bins: int = 20,
) -> list[VolumeLevel]:
    """Volume by close-price level over the candles opened in [start, end); empty when there are none."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, not {bins}")
    lo, hi = _bounds(start, end)
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "start": lo,
        "end": hi,
        "bins": bins,
    }
    return _all(conn, sql_text("common/volume_profile"), VolumeLevel, params)


# --- market trades and order books ------------------------------------------------------------------------


def get_market_trades(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[Trade]:
    """Tape trades of a symbol with time in [start, end), in time order."""
    lo, hi = _bounds(start, end)
    t = MarketTradeModel.__table__
    stmt = (
        sa.select(t)
        .where(t.c.exchange == exchange, t.c.symbol == symbol, t.c.time >= lo, t.c.time < hi)
        .order_by(t.c.time, t.c.trade_id)
        .limit(_limit(limit))
    )
    return _all(conn, stmt, Trade)


def get_market_trades_frame(
    conn: Source,
    exchange: str,
    symbol: str | Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    *,
    as_arrow: bool = False,
) -> pd.DataFrame | pa.Table:
    """Tape trades of one symbol, or of many in one query (ordered by symbol, time and trade id; `limit`
    per symbol), as a DataFrame typed like `to_frame(get_market_trades(...))` or, with `as_arrow=True`, an
    Arrow table; time in [start, end). Read like `get_ohlcv_frame`."""
    lo, hi = _bounds(start, end)
    params = {"exchange": exchange, "start": lo, "end": hi, "limit": _limit(limit)}
    schema = _read_schema("market_trades", [f.name for f in dataclasses.fields(Trade)])
    tables = _read_series(conn, "common/get_market_trades_frame", params, _symbols(symbol), schema)
    table = _concat(tables, schema)
    return table if as_arrow else frame_from_arrow(table)


FEATURE_FRAME_COLUMNS = (
    "exchange",
    "symbol",
    "interval",
    "feature_set",
    "time",
    "log_return",
    "volatility",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr",
    "vwap",
    "volume_zscore",
)


def get_features_frame(
    conn: Source,
    exchange: str,
    symbol: str | Sequence[str],
    interval: str,
    feature_set: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    *,
    as_arrow: bool = False,
) -> pd.DataFrame | pa.Table:
    """Stored features of `feature_set` for one series, or many in one query (ordered by symbol then
    time, `limit` per series), time in [start, end), as a DataFrame or an Arrow table (`as_arrow=True`).
    Read like `get_ohlcv_frame`."""
    lo, hi = _bounds(start, end)
    params = {
        "exchange": exchange,
        "interval": validate_interval(interval),
        "feature_set": feature_set,
        "start": lo,
        "end": hi,
        "limit": _limit(limit),
    }
    schema = _read_schema("features", FEATURE_FRAME_COLUMNS)
    table = _concat(_read_series(conn, "common/get_features_frame", params, _symbols(symbol), schema), schema)
    return table if as_arrow else frame_from_arrow(table)


def _book_summary(bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]]) -> dict[str, Any]:
    best_bid = float(bids[0][0]) if bids else None
    best_ask = float(asks[0][0]) if asks else None
    mid = spread = spread_pct = None
    if best_bid is not None and best_ask is not None:
        mid = (best_bid + best_ask) / 2
        spread = best_ask - best_bid
        spread_pct = spread / mid * 100 if mid else None
    return {
        "best_bid": best_bid,
        "best_ask": best_ask,
        "mid_price": mid,
        "spread": spread,
        "spread_percent": spread_pct,
        "bid_depth": float(sum(float(level[1]) for level in bids)),
        "ask_depth": float(sum(float(level[1]) for level in asks)),
        "depth_levels": max(len(bids), len(asks)),
    }


def insert_orderbook_snapshot(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    time: datetime,
    bids: Sequence[Sequence[float]],
    asks: Sequence[Sequence[float]],
) -> OrderBookSnapshot:
    """Store a snapshot (levels as [price, amount], best first) with its best prices, spread and depth.

    Idempotent: the same (exchange, symbol, time) again replaces the levels only if they changed.
    """
    bids = [[float(p), float(a)] for p, a, *_ in bids]
    asks = [[float(p), float(a)] for p, a, *_ in asks]
    t = OrderbookModel.__table__
    values = {"exchange": exchange, "symbol": symbol, "time": utc(time), "bids": bids, "asks": asks}
    values |= _book_summary(bids, asks)
    stmt = pg_insert(t).values(values)
    updated = [c for c in values if c not in ("exchange", "symbol", "time")]
    stmt = stmt.on_conflict_do_update(
        index_elements=["exchange", "symbol", "time"],
        set_={c: stmt.excluded[c] for c in updated},
        where=sa.tuple_(*(t.c[c] for c in updated)).is_distinct_from(
            sa.tuple_(*(stmt.excluded[c] for c in updated))
        ),
    )
    conn.execute(stmt)
    where = (t.c.exchange == exchange) & (t.c.symbol == symbol) & (t.c.time == values["time"])
    return _required(conn, sa.select(t).where(where), OrderBookSnapshot, "order book snapshot")


def get_orderbook_snapshots(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[OrderBookSnapshot]:
    """Snapshots with time in [start, end), in time order."""
    lo, hi = _bounds(start, end)
    t = OrderbookModel.__table__
    stmt = (
        sa.select(t)
        .where(t.c.exchange == exchange, t.c.symbol == symbol, t.c.time >= lo, t.c.time < hi)
        .order_by(t.c.time)
        .limit(_limit(limit))
    )
    return _all(conn, stmt, OrderBookSnapshot)


def get_latest_orderbook(conn: sa.Connection, exchange: str, symbol: str) -> OrderBookSnapshot | None:
    """The newest snapshot of a symbol, or None."""
    t = OrderbookModel.__table__
    stmt = (
        sa.select(t).where(t.c.exchange == exchange, t.c.symbol == symbol).order_by(t.c.time.desc()).limit(1)
    )
    return _one(conn, stmt, OrderBookSnapshot)


# --- agent decisions --------------------------------------------------------------------------------------


def log_agent_decision(
    conn: sa.Connection,
    agent_id: str,
    symbol: str,
    action: str,
    *,
    state: dict | None = None,
    time: datetime | None = None,
    exchange: str | None = None,
    action_value: float | None = None,
    confidence: float | None = None,
    position_size: float = 0.0,
    position_side: str | None = None,
    entry_price: float | None = None,
    unrealized_pnl: Decimal | float | None = None,
    model_version: str | None = None,
    metadata: dict | None = None,
) -> AgentDecisionRecord:
    """Record an agent's state and action; its reward and outcome come later (`update_agent_decision`)."""
    t = AgentDecision.__table__
    stmt = (
        sa.insert(t)
        .values(
            time=utc(time) or _now(),
            agent_id=agent_id,
            symbol=symbol,
            exchange=exchange,
            action=action,
            state=state or {},
            action_value=action_value,
            confidence=confidence,
            position_size=position_size,
            position_side=position_side,
            entry_price=entry_price,
            unrealized_pnl=_money(unrealized_pnl),
            model_version=model_version,
            metadata=metadata or {},
        )
        .returning(*t.c)
    )
    return _one(conn, stmt, AgentDecisionRecord)


def update_agent_decision(
    conn: sa.Connection,
    decision_id: int,
    *,
    reward: float | None = None,
    outcome: str | None = None,
    next_state: dict | None = None,
    time: datetime | None = None,
) -> AgentDecisionRecord:
    """Set the reward / outcome / next state of a decision; `time` (if known) lets the server prune partitions."""
    t = AgentDecision.__table__
    values = {
        k: v
        for k, v in {"reward": reward, "outcome": outcome, "next_state": next_state}.items()
        if v is not None
    }
    if not values:
        raise ValueError("update_agent_decision needs at least one of reward, outcome, next_state")
    where = t.c.id == decision_id
    if time is not None:
        where &= t.c.time == utc(time)
    stmt = sa.update(t).where(where).values(values).returning(*t.c)
    return _required(conn, stmt, AgentDecisionRecord, f"agent decision {decision_id}")


def get_agent_decisions(
    conn: sa.Connection,
    agent_id: str | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
    pending_reward: bool = False,
) -> list[AgentDecisionRecord]:
    """Decisions with time in [start, end), newest first; `pending_reward` keeps those without a reward."""
    lo, hi = _bounds(start, end)
    t = AgentDecision.__table__
    stmt = sa.select(t).where(t.c.time >= lo, t.c.time < hi)
    if agent_id is not None:
        stmt = stmt.where(t.c.agent_id == agent_id)
    if symbol is not None:
        stmt = stmt.where(t.c.symbol == symbol)
    if pending_reward:
        stmt = stmt.where(t.c.reward.is_(None))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, AgentDecisionRecord)


# --- trading signals --------------------------------------------------------------------------------------


def insert_signal(
    conn: sa.Connection,
    strategy: str,
    symbol: str,
    exchange: str,
    signal_type: str,
    *,
    time: datetime | None = None,
    interval: str | None = None,
    strength: float | None = None,
    confidence: float | None = None,
    entry_price: float | None = None,
    target_price: float | None = None,
    stop_loss: float | None = None,
    expected_return: float | None = None,
    risk_reward_ratio: float | None = None,
    indicators: dict | None = None,
    metadata: dict | None = None,
) -> Signal:
    """Record a strategy's buy / sell / hold signal."""
    if signal_type not in ("buy", "sell", "hold"):
        raise ValueError(f"signal_type must be 'buy', 'sell' or 'hold', not {signal_type!r}")
    t = TradingSignal.__table__
    stmt = (
        sa.insert(t)
        .values(
            time=utc(time) or _now(),
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            interval=validate_interval(interval) if interval else None,
            signal_type=signal_type,
            strength=strength,
            confidence=confidence,
            entry_price=entry_price,
            target_price=target_price,
            stop_loss=stop_loss,
            expected_return=expected_return,
            risk_reward_ratio=risk_reward_ratio,
            indicators=indicators or {},
            metadata=metadata or {},
        )
        .returning(*t.c)
    )
    return _one(conn, stmt, Signal)


def get_signals(
    conn: sa.Connection,
    strategy: str | None = None,
    symbol: str | None = None,
    exchange: str | None = None,
    executed: bool | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
) -> list[Signal]:
    """Signals with time in [start, end), newest first; `executed` True/False filters on execution."""
    lo, hi = _bounds(start, end)
    t = TradingSignal.__table__
    stmt = sa.select(t).where(t.c.time >= lo, t.c.time < hi)
    for column, value in (("strategy", strategy), ("symbol", symbol), ("exchange", exchange)):
        if value is not None:
            stmt = stmt.where(t.c[column] == value)
    if executed is not None:
        stmt = stmt.where(t.c.executed.is_(executed))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, Signal)


def mark_signal_executed(
    conn: sa.Connection, signal_id: int, execution_price: float, executed_at: datetime | None = None
) -> Signal:
    """Mark a signal acted on, at `execution_price` (the exchange's fill price)."""
    t = TradingSignal.__table__
    stmt = (
        sa.update(t)
        .where(t.c.id == signal_id)
        .values(executed=True, execution_price=execution_price, executed_at=utc(executed_at) or _now())
        .returning(*t.c)
    )
    return _required(conn, stmt, Signal, f"trading signal {signal_id}")


def close_signal(
    conn: sa.Connection, signal_id: int, exit_price: float, realized_pnl: Decimal | float
) -> Signal:
    """Record the exit of an executed signal: its realized PnL feeds `get_strategy_performance`."""
    t = TradingSignal.__table__
    stmt = (
        sa.update(t)
        .where(t.c.id == signal_id)
        .values(exit_price=exit_price, realized_pnl=_money(realized_pnl))
        .returning(*t.c)
    )
    return _required(conn, stmt, Signal, f"trading signal {signal_id}")


def get_strategy_performance(
    conn: sa.Connection,
    strategy: str | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StrategyPerformance]:
    """Per strategy: signals, executed, closed, win rate and average / total / best / worst realized PnL."""
    lo, hi = _bounds(start, end)
    params = {"strategy": strategy, "symbol": symbol, "start": lo, "end": hi}
    return _all(conn, sql_text("common/strategy_performance"), StrategyPerformance, params)


# --- our fills, iterations, audits, equity and risk (seed 002) --------------------------------------------


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


def log_trade(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    quantity: Decimal | float | str,
    price: Decimal | float | str,
    *,
    status: str = "filled",
    signal: dict | None = None,
    execution: dict | None = None,
    correlation_id: str | None = None,
    signal_id: int | None = None,
    strategy: str | None = None,
    order_type: str | None = None,
    fees: Decimal | float | str = 0,
    fee_currency: str | None = None,
    executed_at: datetime | None = None,
    realized_pnl: Decimal | float | str | None = None,
) -> TradeFill:
    """Log one of our fills with the signal that caused it and the exchange's execution result."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    t = TradeHistory.__table__
    stmt = (
        sa.insert(t)
        .values(
            correlation_id=correlation_id or generate_correlation_id(),
            signal_id=signal_id,
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            side=side,
            order_type=order_type,
            quantity=_money(quantity),
            price=_money(price),
            fees=_money(fees),
            fee_currency=fee_currency,
            status=status,
            executed_at=utc(executed_at) or _now(),
            realized_pnl=_money(realized_pnl),
            signal=signal,
            execution=execution,
        )
        .returning(*t.c)
    )
    return _one(conn, stmt, TradeFill)


def log_iteration(
    conn: sa.Connection,
    correlation_id: str,
    iteration: int,
    phase: str,
    status: str,
    duration_ms: float | None = None,
    details: dict | None = None,
) -> int:
    """Log one phase of one trading-loop iteration; returns the row id."""
    t = IterationLog.__table__
    stmt = (
        sa.insert(t)
        .values(
            correlation_id=correlation_id,
            iteration=iteration,
            phase=phase,
            status=status,
            duration_ms=duration_ms,
            details=details or {},
        )
        .returning(t.c.id)
    )
    return conn.execute(stmt).scalar_one()


def log_audit_report(
    conn: sa.Connection,
    correlation_id: str,
    report_type: str,
    status: str,
    summary: str | None = None,
    findings: list | None = None,
) -> int:
    """Log the result of an audit report (reconciliation, data checks); returns the row id."""
    t = AuditReportLog.__table__
    stmt = (
        sa.insert(t)
        .values(
            correlation_id=correlation_id,
            report_type=report_type,
            status=status,
            summary=summary,
            findings=findings or [],
        )
        .returning(t.c.id)
    )
    return conn.execute(stmt).scalar_one()


def _upsert_snapshot(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: Sequence[str]):
    stmt = pg_insert(table).values(values)
    updated = [c for c in values if c not in key]
    stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in updated})
    return stmt.returning(*table.c)


def log_equity_snapshot(
    conn: sa.Connection,
    portfolio: str,
    equity: Decimal | float | str,
    *,
    time: datetime | None = None,
    cash: Decimal | float | str | None = None,
    buying_power: Decimal | float | str | None = None,
    positions_value: Decimal | float | str | None = None,
    total_return: float | None = None,
    daily_return: float | None = None,
    run_id: str | None = None,
) -> EquityPoint:
    """Record the portfolio's equity at `time` (default now); the same (portfolio, time) again replaces it."""
    values = {
        "portfolio": portfolio,
        "time": utc(time) or _now(),
        "equity": _money(equity),
        "cash": _money(cash),
        "buying_power": _money(buying_power),
        "positions_value": _money(positions_value),
        "total_return": total_return,
        "daily_return": daily_return,
        "run_id": run_id,
    }
    stmt = _upsert_snapshot(conn, EquityCurve.__table__, values, ("portfolio", "time"))
    return _one(conn, stmt, EquityPoint)


RISK_MONEY = (
    "gross_exposure",
    "net_exposure",
    "largest_position",
    "portfolio_value",
    "daily_pnl",
    "total_pnl",
    "daily_loss_limit",
)
RISK_FLOATS = ("max_drawdown", "sharpe_ratio", "var_95", "var_99", "cvar_95", "cvar_99")


def log_risk_metrics(
    conn: sa.Connection,
    portfolio: str,
    *,
    time: datetime | None = None,
    open_positions: int = 0,
    daily_loss_limit_breached: bool = False,
    run_id: str | None = None,
    **metrics: Decimal | float | str | None,
) -> RiskSnapshot:
    """Record a risk snapshot; `metrics` are the money columns (gross_exposure, net_exposure,
    largest_position, portfolio_value, daily_pnl, total_pnl, daily_loss_limit) and the ratios (max_drawdown,
    sharpe_ratio, var_95, var_99, cvar_95, cvar_99). The same (portfolio, time) again replaces it."""
    unknown = set(metrics) - set(RISK_MONEY) - set(RISK_FLOATS)
    if unknown:
        raise TypeError(f"unknown risk metrics {sorted(unknown)}; known: {sorted(RISK_MONEY + RISK_FLOATS)}")
    values: dict[str, Any] = {
        "portfolio": portfolio,
        "time": utc(time) or _now(),
        "open_positions": open_positions,
        "daily_loss_limit_breached": daily_loss_limit_breached,
        "run_id": run_id,
    }
    values |= {name: _money(metrics.get(name)) for name in RISK_MONEY}
    values |= {name: metrics.get(name) for name in RISK_FLOATS}
    stmt = _upsert_snapshot(conn, RiskMetric.__table__, values, ("portfolio", "time"))
    return _one(conn, stmt, RiskSnapshot)


def get_trade_history(
    conn: sa.Connection,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
    correlation_id: str | None = None,
    strategy: str | None = None,
) -> list[TradeFill]:
    """Our fills executed in [start, end), newest first."""
    lo, hi = _bounds(start, end)
    t = TradeHistory.__table__
    stmt = sa.select(t).where(t.c.executed_at >= lo, t.c.executed_at < hi)
    for column, value in (("symbol", symbol), ("correlation_id", correlation_id), ("strategy", strategy)):
        if value is not None:
            stmt = stmt.where(t.c[column] == value)
    stmt = stmt.order_by(t.c.executed_at.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, TradeFill)


def get_equity_curve(
    conn: sa.Connection, portfolio: str, start: datetime | None = None, end: datetime | None = None
) -> list[EquityPoint]:
    """Equity snapshots with time in [start, end), in time order."""
    lo, hi = _bounds(start, end)
    t = EquityCurve.__table__
    stmt = sa.select(t).where(t.c.portfolio == portfolio, t.c.time >= lo, t.c.time < hi).order_by(t.c.time)
    return _all(conn, stmt, EquityPoint)


def get_risk_metrics(
    conn: sa.Connection, portfolio: str, start: datetime | None = None, end: datetime | None = None
) -> list[RiskSnapshot]:
    """Risk snapshots with time in [start, end), in time order."""
    lo, hi = _bounds(start, end)
    t = RiskMetric.__table__
    stmt = sa.select(t).where(t.c.portfolio == portfolio, t.c.time >= lo, t.c.time < hi).order_by(t.c.time)
    return _all(conn, stmt, RiskSnapshot)


# --- bot trades (seed 004) --------------------------------------------------------------------------------

_BOT_MONEY = ("entry_price", "exit_price", "quantity", "leverage", "realized_pnl", "fees")


def _direction(side_column: sa.ColumnElement) -> sa.ColumnElement:
    """+1 for long, -1 for short: PnL = (exit - entry) * quantity * direction."""
    return sa.case((side_column == "long", 1), else_=-1)


def insert_bot_trade(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    entry_price: Decimal | float | str,
    quantity: Decimal | float | str,
    *,
    entry_time: datetime | None = None,
    bot_id: str | None = None,
    strategy: str | None = None,
    leverage: Decimal | float | str = 1,
    fees: Decimal | float | str = 0,
    metadata: dict | None = None,
) -> BotTradeRecord:
    """Open a bot round trip ('long' or 'short'); close it with `close_bot_trade`."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    t = BotTrade.__table__
    stmt = (
        sa.insert(t)
        .values(
            bot_id=bot_id,
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            side=side,
            entry_price=_money(entry_price),
            quantity=_money(quantity),
            leverage=_money(leverage),
            fees=_money(fees),
            status="open",
            entry_time=utc(entry_time) or _now(),
            metadata=metadata or {},
        )
        .returning(*t.c)
    )
    return _one(conn, stmt, BotTradeRecord)


def update_bot_trade(conn: sa.Connection, trade_id: int, **changes: Any) -> BotTradeRecord:
    """Set any columns of a bot trade (e.g. status, exit_price, realized_pnl, fees, metadata)."""
    t = BotTrade.__table__
    unknown = set(changes) - (set(t.c.keys()) - {"id"})
    if unknown or not changes:
        raise TypeError(
            f"update_bot_trade: unknown or no columns {sorted(unknown)}; known: {sorted(t.c.keys())}"
        )
    values = {}
    for name, value in changes.items():
        if name in _BOT_MONEY:
            value = _money(value)
        elif name in ("entry_time", "exit_time"):
            value = utc(value)
        values[name] = value
    stmt = sa.update(t).where(t.c.id == trade_id).values(values).returning(*t.c)
    return _required(conn, stmt, BotTradeRecord, f"bot trade {trade_id}")


def close_bot_trade(
    conn: sa.Connection,
    trade_id: int,
    exit_price: Decimal | float | str,
    *,
    exit_time: datetime | None = None,
    exit_reason: str | None = None,
    fees: Decimal | float | str | None = None,
) -> BotTradeRecord:
    """Close an open trade: realized PnL (before fees) and its percentage of the entry value, in SQL.

    Closing a closed trade changes nothing and returns it as stored.
    """
    t = BotTrade.__table__
    price = sa.cast(sa.literal(_money(exit_price)), t.c.exit_price.type)
    direction = _direction(t.c.side)
    values: dict[str, Any] = {
        "exit_price": price,
        "exit_time": utc(exit_time) or _now(),
        "exit_reason": exit_reason,
        "status": "closed",
        "realized_pnl": (price - t.c.entry_price) * t.c.quantity * direction,
        "realized_pnl_pct": sa.cast((price - t.c.entry_price) / t.c.entry_price * direction * 100, sa.Float),
    }
    if fees is not None:
        values["fees"] = _money(fees)
    stmt = sa.update(t).where(t.c.id == trade_id, t.c.status == "open").values(values).returning(*t.c)
    closed = _one(conn, stmt, BotTradeRecord)
    if closed is not None:
        return closed
    return _required(conn, sa.select(t).where(t.c.id == trade_id), BotTradeRecord, f"bot trade {trade_id}")


def get_bot_trade(conn: sa.Connection, trade_id: int) -> BotTradeRecord | None:
    """One bot trade by id (seed 004's `get_by_id`), or None."""
    t = BotTrade.__table__
    return _one(conn, sa.select(t).where(t.c.id == trade_id), BotTradeRecord)


def get_recent_bot_trades(
    conn: sa.Connection, limit: int = 50, status: str | None = None, bot_id: str | None = None
) -> list[BotTradeRecord]:
    """The latest trades by entry time, newest first."""
    t = BotTrade.__table__
    stmt = sa.select(t)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    if bot_id is not None:
        stmt = stmt.where(t.c.bot_id == bot_id)
    stmt = stmt.order_by(t.c.entry_time.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, BotTradeRecord)


def get_bot_trades_by_symbol(
    conn: sa.Connection, symbol: str, limit: int | None = 100, status: str | None = None
) -> list[BotTradeRecord]:
    """Trades of one symbol, newest entry first."""
    t = BotTrade.__table__
    stmt = sa.select(t).where(t.c.symbol == symbol)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    stmt = stmt.order_by(t.c.entry_time.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, BotTradeRecord)


def get_bot_trade_statistics(
    conn: sa.Connection,
    symbol: str | None = None,
    strategy: str | None = None,
    bot_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TradeStatistics:
    """Win rate, gross profit / loss, fees, net PnL, average and largest win / loss, profit factor."""
    lo, hi = _bounds(start, end)
    params = {"symbol": symbol, "strategy": strategy, "bot_id": bot_id, "start": lo, "end": hi}
    row = conn.execute(sql_text("common/trade_statistics"), params).mappings().one()
    return from_row(TradeStatistics, row)


# --- positions (seed 004) ---------------------------------------------------------------------------------


def open_position(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    quantity: Decimal | float | str,
    entry_price: Decimal | float | str,
    *,
    stop_loss: Decimal | float | str | None = None,
    take_profit: Decimal | float | str | None = None,
    leverage: Decimal | float | str = 1,
    opened_at: datetime | None = None,
    metadata: dict | None = None,
) -> PositionRecord:
    """Open a position at `entry_price`; mark it with `update_position`, end it with `close_position`."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    t = Position.__table__
    opened = utc(opened_at) or _now()
    stmt = (
        sa.insert(t)
        .values(
            symbol=symbol,
            exchange=exchange,
            side=side,
            quantity=_money(quantity),
            entry_price=_money(entry_price),
            current_price=_money(entry_price),
            stop_loss=_money(stop_loss),
            take_profit=_money(take_profit),
            leverage=_money(leverage),
            status="open",
            opened_at=opened,
            updated_at=opened,
            metadata=metadata or {},
        )
        .returning(*t.c)
    )
    return _one(conn, stmt, PositionRecord)


def get_position(conn: sa.Connection, position_id: int) -> PositionRecord | None:
    """One position by id, open or closed, or None."""
    t = Position.__table__
    return _one(conn, sa.select(t).where(t.c.id == position_id), PositionRecord)


def get_open_positions(
    conn: sa.Connection, symbol: str | None = None, exchange: str | None = None
) -> list[PositionRecord]:
    """Open positions, oldest first."""
    t = Position.__table__
    stmt = sa.select(t).where(t.c.status == "open")
    if symbol is not None:
        stmt = stmt.where(t.c.symbol == symbol)
    if exchange is not None:
        stmt = stmt.where(t.c.exchange == exchange)
    return _all(conn, stmt.order_by(t.c.opened_at, t.c.id), PositionRecord)


def update_position(
    conn: sa.Connection,
    position_id: int,
    *,
    current_price: Decimal | float | str | None = None,
    quantity: Decimal | float | str | None = None,
    stop_loss: Decimal | float | str | None = None,
    take_profit: Decimal | float | str | None = None,
    metadata: dict | None = None,
) -> PositionRecord:
    """Mark an open position to `current_price` (unrealized PnL recomputed in SQL) or change its size/stops."""
    t = Position.__table__
    values: dict[str, Any] = {"updated_at": sa.func.now()}
    qty = t.c.quantity
    if quantity is not None:
        qty = sa.cast(sa.literal(_money(quantity)), t.c.quantity.type)
        values["quantity"] = qty
    if current_price is not None:
        values["current_price"] = sa.cast(sa.literal(_money(current_price)), t.c.current_price.type)
    for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if value is not None:
            values[name] = _money(value)
    if metadata is not None:
        values["metadata"] = metadata
    price = values.get("current_price", t.c.current_price)
    values["unrealized_pnl"] = sa.func.coalesce((price - t.c.entry_price) * qty * _direction(t.c.side), 0)
    stmt = sa.update(t).where(t.c.id == position_id, t.c.status == "open").values(values).returning(*t.c)
    updated = _one(conn, stmt, PositionRecord)
    if updated is not None:
        return updated
    existing = get_position(conn, position_id)
    if existing is None:
        raise NotFoundError(f"no position {position_id}")
    raise ValueError(f"position {position_id} is closed; it cannot be updated")


def close_position(
    conn: sa.Connection,
    position_id: int,
    exit_price: Decimal | float | str,
    *,
    closed_at: datetime | None = None,
) -> PositionRecord:
    """Close at `exit_price`: realized PnL grows by (exit - entry) * quantity * direction, unrealized is 0.

    Closing a closed position changes nothing and returns it as stored.
    """
    t = Position.__table__
    price = sa.cast(sa.literal(_money(exit_price)), t.c.current_price.type)
    closed = utc(closed_at) or _now()
    stmt = (
        sa.update(t)
        .where(t.c.id == position_id, t.c.status == "open")
        .values(
            current_price=price,
            realized_pnl=t.c.realized_pnl + (price - t.c.entry_price) * t.c.quantity * _direction(t.c.side),
            unrealized_pnl=0,
            status="closed",
            closed_at=closed,
            updated_at=closed,
        )
        .returning(*t.c)
    )
    record = _one(conn, stmt, PositionRecord)
    if record is not None:
        return record
    existing = get_position(conn, position_id)
    if existing is None:
        raise NotFoundError(f"no position {position_id}")
    return existing


# --- system events (seed 004) -----------------------------------------------------------------------------


def log_event(
    conn: sa.Connection,
    severity: str,
    source: str,
    event_type: str,
    message: str,
    *,
    component: str | None = None,
    details: dict | None = None,
    time: datetime | None = None,
) -> int:
    """Record an operational event; returns its id."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    t = SystemEvent.__table__
    stmt = (
        sa.insert(t)
        .values(
            time=utc(time) or _now(),
            severity=severity,
            source=source,
            component=component,
            event_type=event_type,
            message=message,
            details=details or {},
        )
        .returning(t.c.id)
    )
    return conn.execute(stmt).scalar_one()


def get_recent_events(
    conn: sa.Connection,
    limit: int | None = 100,
    severity: str | None = None,
    min_severity: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
) -> list[SystemEventRecord]:
    """Newest events first; `severity` matches exactly, `min_severity='warning'` keeps warning and worse."""
    t = SystemEvent.__table__
    stmt = sa.select(t)
    if severity is not None:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        stmt = stmt.where(t.c.severity == severity)
    if min_severity is not None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {SEVERITIES}, not {min_severity!r}")
        stmt = stmt.where(t.c.severity.in_(SEVERITIES[SEVERITIES.index(min_severity) :]))
    if source is not None:
        stmt = stmt.where(t.c.source == source)
    if since is not None:
        stmt = stmt.where(t.c.time >= utc(since))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(_limit(limit))
    return _all(conn, stmt, SystemEventRecord)


# --- administration ---------------------------------------------------------------------------------------


def get_table_sizes(conn: sa.Connection) -> list[TableSize]:
    """Per warehouse table: kind (hypertable / partitioned / regular), estimated rows, bytes, chunks.

    The backend's `table_stats.sql` (the one `db info` starts from), read directly: the columnstore and time
    range details `db info` adds need psycopg2-composed SQL, which the asyncpg side cannot run.
    """
    from resources.backend import detect
    from resources.models import Base

    caps = detect(conn)
    stmt = sql_text(f"{caps.sql_folder}/table_stats")
    return _all(conn, stmt, TableSize, {"tables": sorted(Base.metadata.tables)})


def health_details(conn: sa.Connection) -> dict[str, Any]:
    """One round trip timed, then the backend and the schema revision (see `Warehouse.health`)."""
    from alembic.runtime.migration import MigrationContext

    from resources.backend import detect
    from resources.schema import head_revision

    started = _time.perf_counter()
    conn.execute(sa.text("SELECT 1")).scalar_one()
    latency_ms = (_time.perf_counter() - started) * 1000
    caps = detect(conn)
    return {
        "ok": True,
        "latency_ms": latency_ms,
        "backend": caps.backend.value,
        "server_version": caps.server_version,
        "timescaledb_version": caps.timescaledb_version,
        "schema_revision": MigrationContext.configure(conn).get_current_revision(),
        "expected_revision": head_revision(),
    }
