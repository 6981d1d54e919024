"""Operations on market data (`resources.models.market`): candles, tape trades, order books.

Candles and tape trades are written by the bulk upsert engine (idempotent); reads of candles fall back to
the 1h/1d aggregates when a series has no stored candles of that interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from market_warehouse.resources import clock
from market_warehouse.resources.intervals import interval_to_timedelta, validate_interval
from market_warehouse.resources.models import PRICE_KINDS, TRADE_PRICE
from market_warehouse.resources.models import MarketTrade as MarketTradeModel
from market_warehouse.resources.models import OrderbookSnapshot as OrderbookModel
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse import cold as cold_tier
from market_warehouse.resources.warehouse.aggregates import aggregate_query
from market_warehouse.resources.warehouse.arrow_reads import ArrowReader
from market_warehouse.resources.warehouse.ops.common import (
    Source,
    bounds,
    checked_limit,
    fetch_all,
    fetch_one,
    fetch_required,
    series_rows,
)
from market_warehouse.resources.warehouse.ops.frames import (
    concat,
    fetch_arrow,
    limit_window,
    read_schema,
    read_series,
    symbols_of,
)
from market_warehouse.resources.warehouse.records import (
    Candle,
    Gap,
    OrderBookSnapshot,
    PriceStats,
    Trade,
    VolumeLevel,
    frame_from_arrow,
    from_arrow,
    from_row,
    to_frame,
    utc,
)
from market_warehouse.resources.warehouse.upsert import AuditContext, UpsertResult, upsert_dataframe


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


def insert_ohlcv(
    engine: sa.Engine,
    candles: pd.DataFrame | Iterable[Candle | Mapping[str, Any]],
    *,
    audit: AuditContext | None = None,
) -> UpsertResult:
    """Upsert candles (seed 004's `upsert_many`): new rows inserted, changed rows updated, identical rows
    left alone. Returns the upsert engine's `UpsertResult` (inserted / updated / unchanged counts)."""
    return upsert_dataframe(engine, "ohlcv", candles_frame(candles), audit=audit)


def insert_market_trades(
    engine: sa.Engine,
    trades: pd.DataFrame | Iterable[Trade | Mapping[str, Any]],
    *,
    audit: AuditContext | None = None,
) -> UpsertResult:
    """Upsert public trades keyed by (exchange, symbol, trade_id, time); returns the `UpsertResult`."""
    return upsert_dataframe(engine, "market_trades", trades_frame(trades), audit=audit)


def validate_price(price: str) -> str:
    """`price` if it is a price kind of candles (`PRICE_KINDS`), else a ValueError naming the kinds."""
    if price not in PRICE_KINDS:
        raise ValueError(f"unknown price kind {price!r}: candles are one of {', '.join(PRICE_KINDS)}")
    return price


def _ohlcv_params(exchange, symbol, interval, start, end, limit, price=TRADE_PRICE) -> dict[str, Any]:
    lo, hi = bounds(start, end)
    return {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "price": validate_price(price),
        "start": lo,
        "end": hi,
        "limit": checked_limit(limit),
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
    cold: bool = True,
    price: str = TRADE_PRICE,
) -> list[Candle]:
    """Candles of one series in time order (seed 004's `get_range`); '1h'/'1d' fall back to the aggregates
    when no such candles are stored (see `_ohlcv_statement`). Bounds as in `sql/common/get_ohlcv.sql`.
    A series is one price kind (`price`: 'trade' by default, or 'mark', 'index', 'premium_index').

    With `cold` (default), candles retention exported to the cold tier fill the part of the range no longer
    in the database (`resources.warehouse.cold`); `get_ohlcv_frame` says which part came from where."""

    def frame_records() -> list[Candle]:
        table = get_ohlcv_frame(
            conn, exchange, symbol, interval, start, end, limit, source, as_arrow=True, cold=cold, price=price
        )
        return from_arrow(Candle, table)

    if isinstance(conn, ArrowReader):  # the frame read: no constant columns sent per row, cold tier merged
        return frame_records()
    params = _ohlcv_params(exchange, symbol, interval, start, end, limit, price)
    files = _cold_lookup(conn, params, [symbol], cold)
    statement = _ohlcv_statement(conn, params, source)
    cut = limit_window(params)
    if cut is None:
        candles = fetch_all(conn, statement, Candle, params)
    else:  # the window first (see limit_window), the rest of the range only when it falls short
        candles = fetch_all(conn, statement, Candle, {**params, "end": cut})
        if len(candles) < params["limit"]:
            rest = {**params, "start": cut, "limit": params["limit"] - len(candles)}
            candles += fetch_all(conn, statement, Candle, rest)
    if not cold or not files().num_rows:
        return candles
    return frame_records()


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
    cold: bool = True,
    price: str = TRADE_PRICE,
) -> pd.DataFrame | pa.Table:
    """Candles of one series, or of many in one query (`symbol` a list; ordered by symbol then time,
    `limit` per series), as a DataFrame typed like `to_frame(get_ohlcv(...))` or, with `as_arrow=True`, an
    Arrow table of the stored types (no pandas). Bounds and sources as in `get_ohlcv`; the Warehouse API
    reads it through ADBC (see `resources.warehouse.arrow_reads`), several parts at once when large."""
    symbols = symbols_of(symbol)
    params = _ohlcv_params(exchange, symbols[0], interval, start, end, limit, price)
    stored, aggregated = _ohlcv_sources(conn, params, symbols, source)
    # The stored candles' read says whether it reaches the cold tier; the aggregates' reads do not.
    lookup = _cold_lookup(conn, params, symbols, cold and bool(aggregated))
    schema = read_schema("ohlcv", _OHLCV_COLUMNS)
    tables, reached = _stored_ohlcv(conn, params, stored, schema, cold) if stored else ([], False)
    for one in aggregated:
        statement = aggregate_query(params["interval"])
        tables.append(fetch_arrow(conn, statement, {**params, "symbol": one}, schema))
    table = concat(tables, schema)
    if stored and aggregated:
        table = table.sort_by([("symbol", "ascending"), ("time", "ascending")])
    files = lookup() if aggregated else _cold_ohlcv_files(conn, params, symbols) if reached else None
    if files is not None and files.num_rows:
        rows = cold_tier.read_files(files, schema, params["start"], params["end"], symbols)
        table = cold_tier.merge_tiers(table, rows, ("symbol", "time"), ("symbol", "time"), params["limit"])
    return table if as_arrow else cold_tier.with_tiers(frame_from_arrow(table), table)


def _stored_ohlcv(
    conn: Source, params: Mapping[str, Any], symbols: list[str], schema: pa.Schema, cold: bool
) -> tuple[list[pa.Table], bool]:
    """Stored candles of `symbols`, and (with `cold`) whether cold-tier files of them overlap the range.

    With a limit and no end, the limit's window first (`limit_window`), the whole range again only if a
    series comes back short of its limit; the window's read asks about the cold tier for the whole range."""
    params = {**params, "cold": cold, "cold_end": params["end"]}
    cut = limit_window(params)
    if cut is not None:
        window = {**params, "end": cut}
        tables, reached = _cold_marked(read_series(conn, "common/get_ohlcv_frame", window, symbols, schema))
        counts = pa.concat_tables(tables).column("symbol").value_counts() if tables else []
        if len(counts) == len(symbols) and all(c["counts"].as_py() >= params["limit"] for c in counts):
            return tables, reached
    return _cold_marked(read_series(conn, "common/get_ohlcv_frame", params, symbols, schema))


def _cold_marked(tables: list[pa.Table]) -> tuple[list[pa.Table], bool]:
    """`tables` without the row of NULLs by which `get_ohlcv_frame.sql` says the read reaches cold-tier
    files (a stored candle always has a symbol), and whether one was there."""
    reached = False
    for i, table in enumerate(tables):
        if table.column("symbol").null_count:
            reached = True
            tables[i] = table.filter(pc.is_valid(table.column("symbol")))
    return tables, reached


def _cold_lookup(
    conn: Source, params: Mapping[str, Any], symbols: list[str], cold: bool
) -> Callable[[], pa.Table]:
    """The cold-tier manifest of the read, as a call that returns it (reads of the aggregates: a read of
    stored candles asks in its own statement). Through an ArrowReader the lookup runs on a worker meanwhile
    the candles are read (it is independent of them)."""
    if not cold:
        return lambda: pa.table({})
    if isinstance(conn, ArrowReader) and conn.parallel > 1:
        return conn.submit(_cold_ohlcv_files, conn, params, symbols).result
    return lambda: _cold_ohlcv_files(conn, params, symbols)


def _cold_ohlcv_files(conn: Source, params: Mapping[str, Any], symbols: list[str]) -> pa.Table:
    """The cold-tier files of the series in the read's range (most often none: one indexed lookup)."""
    return cold_tier.cold_files(
        conn,
        "ohlcv",
        params["start"],
        params["end"],
        params["exchange"],
        symbols,
        params["interval"],
        params["price"],
    )


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
    "price",  # last, as in `Candle`
)


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
    return set(fetch_arrow(conn, query, {**params, "symbols": symbols}).column(0).to_pylist())


def get_latest_candles(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    limit: int = 100,
    price: str = TRADE_PRICE,
) -> list[Candle]:
    """The newest `limit` candles of a series (of price kind `price`), in time order (seed 004's
    `get_latest`)."""
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "price": validate_price(price),
    }
    rows = fetch_all(conn, sql_text("common/latest_ohlcv"), Candle, {**params, "limit": checked_limit(limit)})
    return rows[::-1]


def get_latest_ohlcv(
    conn: sa.Connection, exchange: str, symbol: str, interval: str, price: str = TRADE_PRICE
) -> Candle | None:
    """The newest candle of a series (of price kind `price`), or None (seed 000's latest OHLCV)."""
    latest = get_latest_candles(conn, exchange, symbol, interval, limit=1, price=price)
    return latest[0] if latest else None


def get_ohlcv_gaps(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    price: str = TRADE_PRICE,
) -> list[Gap]:
    """Runs of missing candles of one series (price kind `price`) among open times in [start, end); without
    a bound, that edge is not checked."""
    step = interval_to_timedelta(interval)
    lo, hi = bounds(start, end)
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": interval,
        "price": validate_price(price),
        "start": lo,
        "end": hi,
        "step": step,
        "bounded_start": start is not None,
        "bounded_end": end is not None,
    }
    return fetch_all(conn, sql_text("common/ohlcv_gaps"), Gap, params)


def get_price_stats(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    lookback: timedelta = timedelta(hours=24),
    end: datetime | None = None,
    price: str = TRADE_PRICE,
) -> PriceStats:
    """Mean, std, min, max, current close and count over the candles (of price kind `price`) opened in
    [end - lookback, end)."""
    hi = utc(end) or clock.now()
    lo = hi - lookback
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "price": validate_price(price),
    }
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
    price: str = TRADE_PRICE,
) -> list[VolumeLevel]:
    """Volume by close-price level over the candles (of price kind `price`) opened in [start, end); empty
    when there are none."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, not {bins}")
    lo, hi = bounds(start, end)
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": validate_interval(interval),
        "price": validate_price(price),
        "start": lo,
        "end": hi,
        "bins": bins,
    }
    return fetch_all(conn, sql_text("common/volume_profile"), VolumeLevel, params)


def get_market_trades(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    cold: bool = True,
) -> list[Trade]:
    """Tape trades of a symbol with time in [start, end), in time order; with `cold`, trades retention
    exported to the cold tier fill the part of the range no longer in the database."""
    where = {"exchange": exchange, "symbol": symbol}
    trades = series_rows(conn, MarketTradeModel, Trade, where, start, end, limit, ("time", "trade_id"))
    lo, hi = bounds(start, end)
    if not cold or not cold_tier.cold_files(conn, "market_trades", lo, hi, exchange, [symbol]).num_rows:
        return trades
    return from_arrow(
        Trade, get_market_trades_frame(conn, exchange, symbol, start, end, limit, as_arrow=True)
    )


def get_market_trades_frame(
    conn: Source,
    exchange: str,
    symbol: str | Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    *,
    as_arrow: bool = False,
    cold: bool = True,
) -> pd.DataFrame | pa.Table:
    """Tape trades of one symbol, or of many in one query (ordered by symbol, time and trade id; `limit`
    per symbol), as a DataFrame typed like `to_frame(get_market_trades(...))` or, with `as_arrow=True`, an
    Arrow table; time in [start, end). Read like `get_ohlcv_frame`."""
    lo, hi = bounds(start, end)
    params = {"exchange": exchange, "start": lo, "end": hi, "limit": checked_limit(limit)}
    schema = read_schema("market_trades", [f.name for f in dataclasses.fields(Trade)])
    symbols = symbols_of(symbol)
    tables = read_series(conn, "common/get_market_trades_frame", params, symbols, schema)
    table = concat(tables, schema)
    files = cold_tier.cold_files(conn, "market_trades", lo, hi, exchange, symbols) if cold else None
    if files is not None and files.num_rows:
        rows = cold_tier.read_files(files, schema, lo, hi, symbols)
        keys = ("symbol", "trade_id", "time")
        table = cold_tier.merge_tiers(table, rows, keys, ("symbol", "time", "trade_id"), params["limit"])
    return table if as_arrow else cold_tier.with_tiers(frame_from_arrow(table), table)


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
    return fetch_required(conn, sa.select(t).where(where), OrderBookSnapshot, "order book snapshot")


def get_orderbook_snapshots(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[OrderBookSnapshot]:
    """Snapshots with time in [start, end), in time order."""
    where = {"exchange": exchange, "symbol": symbol}
    return series_rows(conn, OrderbookModel, OrderBookSnapshot, where, start, end, limit)


def get_latest_orderbook(conn: sa.Connection, exchange: str, symbol: str) -> OrderBookSnapshot | None:
    """The newest snapshot of a symbol, or None."""
    t = OrderbookModel.__table__
    stmt = (
        sa.select(t).where(t.c.exchange == exchange, t.c.symbol == symbol).order_by(t.c.time.desc()).limit(1)
    )
    return fetch_one(conn, stmt, OrderBookSnapshot)
