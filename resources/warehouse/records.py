"""Typed results of the storage API, and the one row -> record mapping both Warehouse classes use.

Records are frozen dataclasses so a trading loop can pass them around without copying or fearing mutation.
Market data (prices, volumes) are floats; money of our own books is `Decimal`, exactly as stored in the
`numeric` columns. Every timestamp is tz-aware UTC whatever the session time zone or driver (psycopg2 returns
the session's offset, asyncpg UTC): `from_row` normalizes, so sync and async results compare equal.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

R = TypeVar("R")


# --- market data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candle:
    exchange: str
    symbol: str
    interval: str
    time: datetime  # open time
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float | None = None
    trades_count: int | None = None
    vwap: float | None = None
    quality_score: float | None = None
    is_anomaly: bool = False
    source: str | None = None
    price: str = "trade"  # price kind: trade, mark, index or premium_index (resources.models.PRICE_KINDS)


@dataclass(frozen=True)
class Trade:
    """A public trade of the exchange tape (not one of our fills: see `TradeFill`)."""

    exchange: str
    symbol: str
    trade_id: str
    time: datetime
    price: float
    amount: float
    cost: float | None = None
    side: str | None = None
    is_buyer_maker: bool | None = None


@dataclass(frozen=True)
class OrderBookSnapshot:
    exchange: str
    symbol: str
    time: datetime
    best_bid: float | None
    best_ask: float | None
    mid_price: float | None
    spread: float | None
    spread_percent: float | None
    bid_depth: float | None
    ask_depth: float | None
    depth_levels: int | None
    bids: list = field(default_factory=list)  # [[price, amount], ...], best first
    asks: list = field(default_factory=list)


@dataclass(frozen=True)
class PriceStats:
    """Statistics of close prices of the candles opened in [start, end)."""

    exchange: str
    symbol: str
    interval: str
    start: datetime
    end: datetime
    count: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1), like pandas
    min: float | None
    max: float | None
    current: float | None  # close of the latest candle in the window
    current_time: datetime | None


@dataclass(frozen=True)
class VolumeLevel:
    """Volume traded in one price bin [price_low, price_high) (the last bin includes its high)."""

    level: int  # 1 = lowest price bin
    price_low: float
    price_high: float
    volume: float
    candles: int


@dataclass(frozen=True)
class Gap:
    """Missing candles: open times `start` .. `end` inclusive, `missing` of them."""

    exchange: str
    symbol: str
    interval: str
    start: datetime
    end: datetime
    missing: int


@dataclass(frozen=True)
class InstrumentRecord:
    """What an (exchange, ccxt unified symbol) is (issue 13): spot `BTC/USDT`, linear perpetual
    `BTC/USDT:USDT`, inverse `BTC/USD:BTC`, dated future `BTC/USDT:USDT-261225`, option
    `BTC/USD:BTC-261225-100000-C`. `first_seen` / `last_seen`: when this warehouse saw it listed."""

    exchange: str
    symbol: str
    type: str  # spot, swap, future, option
    base: str
    quote: str
    settle: str | None = None
    exchange_symbol: str | None = None
    contract_size: float | None = None
    linear: bool | None = None
    inverse: bool | None = None
    expiry: datetime | None = None
    strike: float | None = None
    option_type: str | None = None
    tick_size: float | None = None
    lot_size: float | None = None
    active: bool = True
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    listed_at: datetime | None = None
    delisted_at: datetime | None = None
    source: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FundingRateRecord:
    """One funding event of a perpetual; `interval` is the spacing observed to the previous one."""

    exchange: str
    symbol: str
    time: datetime
    rate: float
    mark_price: float | None = None
    index_price: float | None = None
    interval: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class OpenInterestRecord:
    """Open interest of a derivative at `time` (amount in contracts or base units, value in quote/settle)."""

    exchange: str
    symbol: str
    interval: str
    time: datetime
    amount: float | None = None
    value: float | None = None
    source: str | None = None


# --- trading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentDecisionRecord:
    id: int
    time: datetime
    agent_id: str
    symbol: str
    exchange: str | None
    action: str
    state: dict
    next_state: dict | None
    action_value: float | None
    confidence: float | None
    reward: float | None
    outcome: str | None
    position_size: float
    position_side: str | None
    entry_price: float | None
    unrealized_pnl: Decimal | None
    model_version: str | None
    metadata: dict


@dataclass(frozen=True)
class Signal:
    id: int
    time: datetime
    strategy: str
    symbol: str
    exchange: str
    interval: str | None
    signal_type: str
    strength: float | None
    confidence: float | None
    entry_price: float | None
    target_price: float | None
    stop_loss: float | None
    expected_return: float | None
    risk_reward_ratio: float | None
    executed: bool
    executed_at: datetime | None
    execution_price: float | None
    exit_price: float | None
    realized_pnl: Decimal | None
    indicators: dict
    metadata: dict


@dataclass(frozen=True)
class StrategyPerformance:
    strategy: str
    signals: int
    executed: int
    closed: int  # signals with a realized PnL
    wins: int
    losses: int
    win_rate: float | None  # wins / closed
    avg_pnl: Decimal | None
    total_pnl: Decimal | None
    best_pnl: Decimal | None
    worst_pnl: Decimal | None


@dataclass(frozen=True)
class TradeFill:
    """One of our own fills as logged by the trading loop (`trade_history`)."""

    id: int
    correlation_id: str | None
    signal_id: int | None
    strategy: str | None
    symbol: str
    exchange: str
    side: str
    order_type: str | None
    quantity: Decimal
    price: Decimal
    fees: Decimal
    fee_currency: str | None
    status: str
    executed_at: datetime
    realized_pnl: Decimal | None
    signal: dict | None
    execution: dict | None
    created_at: datetime


@dataclass(frozen=True)
class BotTradeRecord:
    """A bot's round trip, entry to exit (`bot_trades`)."""

    id: int
    bot_id: str | None
    strategy: str | None
    symbol: str
    exchange: str
    side: str
    entry_price: Decimal
    exit_price: Decimal | None
    quantity: Decimal
    leverage: Decimal
    realized_pnl: Decimal | None
    realized_pnl_pct: float | None
    fees: Decimal
    status: str
    entry_time: datetime
    exit_time: datetime | None
    exit_reason: str | None
    metadata: dict


@dataclass(frozen=True)
class TradeStatistics:
    """Closed bot trades: `realized_pnl` is before fees, so `net_pnl` = gross profit - gross loss - fees."""

    trades: int
    wins: int
    losses: int
    breakeven: int
    win_rate: float | None
    gross_profit: Decimal
    gross_loss: Decimal  # a positive amount
    total_fees: Decimal
    net_pnl: Decimal
    avg_win: Decimal | None
    avg_loss: Decimal | None  # a negative amount
    largest_win: Decimal | None
    largest_loss: Decimal | None  # a negative amount
    profit_factor: float | None  # gross profit / gross loss; None without losses


@dataclass(frozen=True)
class PositionRecord:
    id: int
    symbol: str
    exchange: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    current_price: Decimal | None
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    leverage: Decimal
    status: str
    opened_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    metadata: dict


@dataclass(frozen=True)
class EquityPoint:
    portfolio: str
    time: datetime
    equity: Decimal
    cash: Decimal | None
    buying_power: Decimal | None
    positions_value: Decimal | None
    total_return: float | None
    daily_return: float | None
    run_id: str | None


@dataclass(frozen=True)
class RiskSnapshot:
    portfolio: str
    time: datetime
    open_positions: int
    gross_exposure: Decimal | None
    net_exposure: Decimal | None
    largest_position: Decimal | None
    portfolio_value: Decimal | None
    daily_pnl: Decimal | None
    total_pnl: Decimal | None
    max_drawdown: float | None
    sharpe_ratio: float | None
    var_95: float | None
    var_99: float | None
    cvar_95: float | None
    cvar_99: float | None
    daily_loss_limit: Decimal | None
    daily_loss_limit_breached: bool
    run_id: str | None


# --- operations -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemEventRecord:
    id: int
    time: datetime
    severity: str
    source: str
    component: str | None
    event_type: str
    message: str
    details: dict


@dataclass(frozen=True)
class TableSize:
    table_name: str
    kind: str  # hypertable / partitioned / regular
    row_estimate: int
    total_bytes: int
    pieces: int  # chunks or partitions


@dataclass(frozen=True)
class Health:
    ok: bool
    latency_ms: float | None  # one `SELECT 1` round trip on a pooled connection
    backend: str | None
    server_version: str | None
    timescaledb_version: str | None
    schema_revision: str | None  # revision stamped in the database
    expected_revision: str | None  # head revision of this code
    error: str | None = None

    @property
    def schema_current(self) -> bool:
        return self.schema_revision is not None and self.schema_revision == self.expected_revision


# --- mapping ----------------------------------------------------------------------------------------------


def utc(value: datetime | None) -> datetime | None:
    """The same instant in UTC; naive values are refused rather than guessed."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive timestamp {value.isoformat()}: timestamps must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _converter(hint: Any) -> tuple[type | None, Callable[[Any], Any] | None]:
    """The field's base type and how to normalize a driver value to it (None: take values as they are)."""
    args = set(typing.get_args(hint)) - {type(None)} if isinstance(hint, types.UnionType) else {hint}
    base = typing.get_origin(next(iter(args))) or next(iter(args))
    convert = {datetime: utc, Decimal: _decimal, float: float, int: int, dict: _json, list: _json}.get(base)
    return base, convert


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, type | None, Callable[[Any], Any] | None, bool], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            *_converter(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def from_row(cls: type[R], row: Mapping[str, Any]) -> R:
    """Build a record from one result row (a `RowMapping` or dict); columns without a field are ignored."""
    values = {}
    for name, _, convert, required in _plan(cls):
        if name not in row:
            if required:
                raise KeyError(f"{cls.__name__}.{name}: the query returned no column {name!r}")
            continue
        value = row[name]
        values[name] = convert(value) if convert is not None and value is not None else value
    return cls(**values)


def _normalized(column: tuple, base: type | None, convert: Callable[[Any], Any] | None) -> Sequence[Any]:
    """One column's values normalized; skipped when the driver already returned the field's type, which is
    the common case (floats, ints, Decimals), so wide results cost one type check per value."""
    if convert is None:
        return column
    if base is not datetime and all(type(v) is base or v is None for v in column):
        return column
    return [None if v is None else convert(v) for v in column]


def from_result(cls: type[R], result: sa.Result) -> list[R]:
    """Records from a whole result, converted column by column (~5x faster than row by row for candles)."""
    keys = list(result.keys())
    rows = result.all()
    return _from_columns(cls, keys, list(zip(*rows, strict=True)) if rows else [])


def from_arrow(cls: type[R], table: pa.Table) -> list[R]:
    """Records from an Arrow result (`ArrowReader`): each column becomes Python values through numpy, and a
    `real` column takes the values the text protocol gives (85.3, not its float32 85.30000305...)."""
    table = text_floats(table)
    columns = [_python_values(column) for column in table.columns]
    return _from_columns(cls, table.column_names, columns, typed=True)


def _python_values(column: pa.ChunkedArray) -> list:
    """A column's values as Python objects, NULL as None; numbers, booleans and times through C loops."""
    type_ = column.type
    if column.null_count == len(column):  # e.g. the optional columns a venue does not give
        return [None] * len(column)
    if pa.types.is_timestamp(type_) and type_.tz is not None:
        values = _datetimes(column)
    elif pa.types.is_floating(type_) or (
        (pa.types.is_integer(type_) or pa.types.is_boolean(type_)) and not column.null_count
    ):
        values = column.to_numpy(zero_copy_only=False).tolist()
    elif (pa.types.is_string(type_) or pa.types.is_large_string(type_)) and (
        (value := _one_value(column)) is not None
    ):
        values = [value] * len(column)  # exchange, symbol, interval, ...: one str, shared by the records
    else:
        return column.to_pylist()
    if column.null_count:
        for i in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)):
            values[i] = None
    return values


def _one_value(column: pa.ChunkedArray) -> str | None:
    """The value of a string column whose non-NULL values are all the same (the constant columns of a
    series read: ~20 µs, where converting 1,000 strings costs ~35-50 µs), else None."""
    distinct = pc.unique(column).drop_null()  # a few values at most, for the columns of one series
    return distinct[0].as_py() if len(distinct) == 1 else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Times are built by adding steps when there are at most this many distinct steps per value (candles: one).
_STEPS_PER_VALUE = 0.25


def _datetimes(column: pa.ChunkedArray) -> list[datetime]:
    """A tz-aware timestamp column as UTC datetimes (NULLs: any value, the caller puts None there).

    Candles are evenly spaced: each datetime is the previous one plus a timedelta of the few distinct
    steps, added in C by `accumulate` (~0.1 ms for 1,000, exact integer arithmetic); irregular times
    (tape trades) go through pandas, which builds tz-aware datetimes in C (~0.45 ms for 1,000)."""
    if column.type.unit != "us":
        column = column.cast(pa.timestamp("us", column.type.tz))
    one = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    micros = one.view(pa.int64())  # the same instants: microseconds since 1970 UTC, no copy
    micros = (pc.fill_null(micros, 0) if micros.null_count else micros).to_numpy()
    first = _EPOCH + timedelta(microseconds=int(micros[0]))
    steps = np.diff(micros)
    if not len(steps) or (steps == steps[0]).all():  # evenly spaced: one step
        step = timedelta(microseconds=int(steps[0])) if len(steps) else None
        return list(itertools.accumulate(itertools.repeat(step, len(steps)), initial=first))
    distinct, index = np.unique(steps, return_inverse=True)
    if len(distinct) > _STEPS_PER_VALUE * len(micros) + 1:
        naive = micros.astype("datetime64[us]")
        return pd.DatetimeIndex(naive).tz_localize(UTC).to_pydatetime().tolist()
    deltas = [timedelta(microseconds=step) for step in distinct.tolist()]
    return list(itertools.accumulate(map(deltas.__getitem__, index.tolist()), initial=first))


def _from_columns(
    cls: type[R], keys: list[str], columns: list[Sequence[Any]], typed: bool = False
) -> list[R]:
    """Records from columns of values; `typed`: numbers, strings and times are already the fields' types
    (Arrow results), only other fields (Decimal, JSON) are normalized."""
    if not columns or not len(columns[0]):
        return []
    position = {key: i for i, key in enumerate(keys)}
    names, values = [], []
    for name, base, convert, required in _plan(cls):
        if name not in position:
            if required:
                raise KeyError(f"{cls.__name__}.{name}: the query returned no column {name!r}")
            continue
        names.append(name)
        column = columns[position[name]]
        values.append(column if typed and base in _ARROW_EXACT else _normalized(column, base, convert))
    return _builder(cls, tuple(names))(values)


@functools.cache
def _builder(cls: type[R], given: tuple[str, ...]) -> Callable[[list[Sequence[Any]]], list[R]]:
    """A function making records of `cls` from columns of the `given` fields, the others taking their
    defaults: the state `__init__` would set, in field order, stored in each new instance's dict.

    A frozen dataclass's `__init__` sets each field through object.__setattr__ (~6 µs a candle); the
    generated loop stores one local per field (~0.7 µs a candle, 1.6x faster than a dict update from a zip
    per row, same key-sharing dicts), generated once per class and columns as dataclasses generates
    `__init__`. Records with `__post_init__` or `__slots__` are made by their `__init__`; no field
    given makes no records, as before."""
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not given:
        return lambda values: [cls(**dict(zip(given, row, strict=True))) for row in zip(*values, strict=True)]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    variables = {name: f"v{i}" for i, name in enumerate(given)}
    stores = []
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name in variables:
            value = variables[f.name]
        elif f.default is not dataclasses.MISSING:
            env[f"default{i}"], value = f.default, f"default{i}"
        else:  # a default_factory (a required field missing is refused before)
            env[f"factory{i}"], value = f.default_factory, f"factory{i}()"
        stores.append(f"        state[{f.name!r}] = {value}")
    targets = "".join(f"{v}, " for v in variables.values())
    source = "\n".join(
        [
            "def build(values):",
            "    out = []",
            "    append = out.append",
            f"    for {targets}in zip(*values, strict=True):",
            "        record = new(cls)",
            "        state = record.__dict__",
            *stores,
            "        append(record)",
            "    return out",
        ]
    )
    exec(compile(source, f"<records of {cls.__name__}>", "exec"), env)  # identifiers: the fields' names
    return env["build"]


def from_rows(cls: type[R], rows: Iterable[Mapping[str, Any]]) -> list[R]:
    return [from_row(cls, row) for row in rows]


def _typed(frame: pd.DataFrame, cls: type) -> pd.DataFrame:
    """Column dtypes from the record's field types, so a column of missing values still has its type:
    datetimes tz-aware UTC, floats float64 (NaN), ints nullable Int64, strings `str` (NaN), booleans bool
    (nullable boolean where values are missing); Decimal money stays exact (object). The Arrow reads
    (`frame_from_arrow`) give the same dtypes."""
    for name, base, _, _ in _plan(cls):
        if name not in frame:
            continue
        if base is datetime:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif base is float:
            frame[name] = frame[name].astype("float64")
        elif base is int:
            frame[name] = frame[name].astype("Int64")
        elif base is str:
            frame[name] = frame[name].astype("str")
        elif base is bool:
            frame[name] = frame[name].astype("boolean" if frame[name].isna().any() else bool)
    return frame


def to_frame(records: Iterable[Any], record_type: type | None = None) -> pd.DataFrame:
    """One row per record, one column per field, typed as `_typed` says.

    `record_type` gives the columns when `records` is empty.
    """
    records = list(records)
    cls = record_type or (type(records[0]) if records else None)
    if cls is None:
        return pd.DataFrame()
    names = [f.name for f in dataclasses.fields(cls)]
    frame = pd.DataFrame.from_records([tuple(getattr(r, n) for n in names) for r in records], columns=names)
    return _typed(frame, cls)


# --- Arrow results ------------------------------------------------------------------------------------------


def text_floats(table: pa.Table) -> pa.Table:
    """`real` (float32) columns as the float64 of their shortest decimal text — what PostgreSQL's text
    protocol sends and psycopg2 parses, so a score stored as 90.7 reads 90.7 (>= 90.7 holds), not
    90.69999694824219. Exact: the shortest text that reads back to the same float32."""
    for i, column_type in enumerate(table.schema):
        if pa.types.is_float32(column_type.type):
            column = pc.cast(pc.cast(table.column(i), pa.string()), pa.float64())
            table = table.set_column(i, pa.field(column_type.name, pa.float64()), column)
    return table


def frame_from_arrow(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a DataFrame typed like `to_frame`: strings, tz-aware UTC timestamps, float64
    (`real` columns through `text_floats`), nullable Int64, bool (nullable boolean only where NULLs are).

    A small result of the usual column types is converted column by column (`_small_frame`); the same
    frame as `to_pandas` builds, without its metadata machinery and thread pool (~1 ms of a 1,000-row read)."""
    table = text_floats(table)
    small = _small_frame(table)
    return small if small is not None else _pandas_frame(table)


def _pandas_frame(table: pa.Table) -> pd.DataFrame:
    """`frame_from_arrow` through `to_pandas` (any size, any column type)."""
    frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    for column_type in table.schema:
        if pa.types.is_boolean(column_type.type) and table.column(column_type.name).null_count:
            frame[column_type.name] = frame[column_type.name].astype("boolean")
    return frame


_ARROW_EXACT = frozenset({float, int, str, bool, datetime})
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype()}
# Up to this many rows a frame is built column by column: above it, to_pandas's threads win.
_SMALL_ROWS = 20_000


def _small_frame(table: pa.Table) -> pd.DataFrame | None:
    """`table` as `frame_from_arrow` types it, built from one pandas array per column; None when the table
    is large, has repeated column names or a column type this does not convert (`to_pandas` does those)."""
    names = table.column_names
    if not names or table.num_rows > _SMALL_ROWS or len(set(names)) != len(names):
        return None
    arrays = {}
    for name, column in zip(names, table.columns, strict=True):
        array = _pandas_array(column)
        if array is None:
            return None
        arrays[name] = array
    return pd.DataFrame(arrays, copy=False)


def _pandas_array(column: pa.ChunkedArray) -> Any:
    """One column as `to_pandas(types_mapper=_PANDAS_TYPES.get)` converts it, then booleans with NULLs
    nullable; None for a type left to `to_pandas`."""
    type_ = column.type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return pd.StringDtype(na_value=np.nan).__from_arrow__(column)  # pandas 3's `str`, as to_pandas
    if pa.types.is_float64(type_):
        return column.to_numpy()
    if type_ in _PANDAS_TYPES:
        return _PANDAS_TYPES[type_].__from_arrow__(column)
    if pa.types.is_boolean(type_):
        return pd.BooleanDtype().__from_arrow__(column) if column.null_count else column.to_numpy()
    if pa.types.is_timestamp(type_) and type_.tz is not None:
        return pd.DatetimeTZDtype(type_.unit, type_.tz).__from_arrow__(column)
    return None
