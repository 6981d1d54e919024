"""Market data: candles, trades, order books, ticker metrics, instruments, funding, open interest, generic
series and the time grid."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Integer,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Json, Price, UtcTimestamp, timeseries

# What a candle's prices are (issue 13): traded prices, or the exchange's mark, index or premium index price
# of a derivative. Part of the candle key, so the four series of one instrument never overwrite each other.
PRICE_KINDS = ("trade", "mark", "index", "premium_index")
TRADE_PRICE = "trade"
# Instrument types of ccxt's unified markets.
INSTRUMENT_TYPES = ("spot", "swap", "future", "option")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


@timeseries("time", timedelta(days=7))
class Ohlcv(Base):
    """Closed candles per (exchange, symbol, interval, price kind, open time) — seeds 000/003/004, issue 13."""

    __tablename__ = "ohlcv"
    __table_args__ = (
        PrimaryKeyConstraint("exchange", "symbol", "interval", "price", "time"),
        CheckConstraint("quality_score BETWEEN 0 AND 100", name="quality_score"),
        CheckConstraint(_one_of("price", PRICE_KINDS), name="price"),
    )

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)  # ccxt unified symbol: BTC/USDT, BTC/USDT:USDT, ...
    interval: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    open: Mapped[float] = mapped_column(Price)
    high: Mapped[float] = mapped_column(Price)
    low: Mapped[float] = mapped_column(Price)
    close: Mapped[float] = mapped_column(Price)
    volume: Mapped[float] = mapped_column(Price)
    quote_volume: Mapped[float | None] = mapped_column(Price)
    trades_count: Mapped[int | None] = mapped_column(BigInteger)
    vwap: Mapped[float | None] = mapped_column(Price)
    quality_score: Mapped[float | None] = mapped_column(REAL)
    is_anomaly: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    source: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    # Last, where migration 0005 added it. `key_default`: writers that give no price kind write traded
    # prices (the upsert fills it in).
    price: Mapped[str] = mapped_column(
        Text, server_default=text(f"'{TRADE_PRICE}'"), info={"key_default": TRADE_PRICE}
    )


@timeseries("time", timedelta(days=1))
class MarketTrade(Base):
    """Public trades (tape) per exchange and symbol — seed 000."""

    __tablename__ = "market_trades"
    __table_args__ = (
        PrimaryKeyConstraint("exchange", "symbol", "trade_id", "time"),
        CheckConstraint("side IN ('buy', 'sell')", name="side"),
    )

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    trade_id: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    price: Mapped[float] = mapped_column(Price)
    amount: Mapped[float] = mapped_column(Price)
    cost: Mapped[float | None] = mapped_column(Price)
    # Nullable: some exchanges do not report the aggressor side.
    side: Mapped[str | None] = mapped_column(Text)
    is_buyer_maker: Mapped[bool | None] = mapped_column(Boolean)
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    # When the live capture received the trade (issue 15); NULL for trades pulled over REST.
    received_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)


@timeseries("time", timedelta(days=1))
class OrderbookSnapshot(Base):
    """Order book snapshots with summary stats and the raw levels — seed 000."""

    __tablename__ = "orderbook_snapshots"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "time"),)

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    best_bid: Mapped[float | None] = mapped_column(Price)
    best_ask: Mapped[float | None] = mapped_column(Price)
    mid_price: Mapped[float | None] = mapped_column(Price)
    spread: Mapped[float | None] = mapped_column(Price)
    spread_percent: Mapped[float | None] = mapped_column(Price)
    bid_depth: Mapped[float | None] = mapped_column(Price)
    ask_depth: Mapped[float | None] = mapped_column(Price)
    depth_levels: Mapped[int | None] = mapped_column(Integer)
    # Lists of [price, amount], best level first.
    bids: Mapped[list[Any]] = mapped_column(Json, server_default=text("'[]'::jsonb"))
    asks: Mapped[list[Any]] = mapped_column(Json, server_default=text("'[]'::jsonb"))
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


@timeseries("time", timedelta(days=7))
class MarketMetric(Base):
    """24h ticker fields and derived market metrics per interval — seed 000."""

    __tablename__ = "market_metrics"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "interval", "time"),)

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    interval: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    last_price: Mapped[float | None] = mapped_column(Price)
    open_24h: Mapped[float | None] = mapped_column(Price)
    high_24h: Mapped[float | None] = mapped_column(Price)
    low_24h: Mapped[float | None] = mapped_column(Price)
    volume_24h: Mapped[float | None] = mapped_column(Price)
    quote_volume_24h: Mapped[float | None] = mapped_column(Price)
    price_change_24h: Mapped[float | None] = mapped_column(Price)
    price_change_percent_24h: Mapped[float | None] = mapped_column(Price)
    bid: Mapped[float | None] = mapped_column(Price)
    ask: Mapped[float | None] = mapped_column(Price)
    volatility: Mapped[float | None] = mapped_column(Price)
    atr: Mapped[float | None] = mapped_column(Price)
    avg_spread_percent: Mapped[float | None] = mapped_column(Price)
    orderbook_depth: Mapped[float | None] = mapped_column(Price)
    funding_rate: Mapped[float | None] = mapped_column(Price)
    open_interest: Mapped[float | None] = mapped_column(Price)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))


class Instrument(Base):
    """What a (exchange, ccxt unified symbol) is — issue 13. Rows are never deleted: a delisted instrument
    stays (active false, delisted_at when known) so that a backtest over a past range sees what existed then.

    Filled from ccxt `load_markets()` on each pull and from archive files; `first_seen` / `last_seen` are
    when this warehouse first / last saw it listed, `listed_at` / `delisted_at` what the source says.
    """

    __tablename__ = "instruments"
    __table_args__ = (
        PrimaryKeyConstraint("exchange", "symbol"),
        CheckConstraint(_one_of("type", INSTRUMENT_TYPES), name="type"),
        CheckConstraint("option_type IS NULL OR option_type IN ('call', 'put')", name="option_type"),
        CheckConstraint("type = 'spot' OR settle IS NOT NULL", name="derivative_settle"),
    )

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)  # ccxt unified: BTC/USDT, BTC/USDT:USDT, BTC/USD:BTC-261225-...
    type: Mapped[str] = mapped_column(Text)
    base: Mapped[str] = mapped_column(Text)
    quote: Mapped[str] = mapped_column(Text)
    settle: Mapped[str | None] = mapped_column(Text)  # null for spot
    exchange_symbol: Mapped[str | None] = mapped_column(Text)  # the exchange's own id: BTCUSDT, BTCUSD_PERP
    contract_size: Mapped[float | None] = mapped_column(Price)
    linear: Mapped[bool | None] = mapped_column(Boolean)  # null for spot
    inverse: Mapped[bool | None] = mapped_column(Boolean)  # null for spot
    expiry: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)  # dated futures and options
    strike: Mapped[float | None] = mapped_column(Price)
    option_type: Mapped[str | None] = mapped_column(Text)
    tick_size: Mapped[float | None] = mapped_column(Price)
    lot_size: Mapped[float | None] = mapped_column(Price)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    first_seen: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    last_seen: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    listed_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    delisted_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    source: Mapped[str | None] = mapped_column(Text)  # 'ccxt:binance', 'file:binance-vision', ...
    info: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


@timeseries("time", timedelta(days=30))
class FundingRate(Base):
    """Funding rates of perpetuals at each funding time — issue 13. `interval` is the observed spacing to the
    previous funding ('8h', '4h', '1h'; null when unknown): intervals vary per symbol and over time, so no
    grid is assumed anywhere."""

    __tablename__ = "funding_rates"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "time"),)

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    rate: Mapped[float] = mapped_column(Price)
    mark_price: Mapped[float | None] = mapped_column(Price)
    index_price: Mapped[float | None] = mapped_column(Price)
    interval: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


@timeseries("time", timedelta(days=7))
class OpenInterest(Base):
    """Open interest of derivatives per (exchange, symbol, interval, time) — issue 13: `amount` in contracts
    (or base units), `value` in the quote/settle currency, as ccxt's `fetch_open_interest_history` gives."""

    __tablename__ = "open_interest"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "interval", "time"),)

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    interval: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    amount: Mapped[float | None] = mapped_column(Price)
    value: Mapped[float | None] = mapped_column(Price)
    source: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class Source(Base):
    """Registry of generic series feeding `timeseries_data` — seed 003."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # 'exchange', 'file', 'derived', ...
    exchange: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str | None] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


@timeseries("time", timedelta(days=30))
class TimeseriesPoint(Base):
    """Generic series values keyed by registered source — seed 003."""

    __tablename__ = "timeseries_data"
    __table_args__ = (
        PrimaryKeyConstraint("source_id", "time"),
        CheckConstraint("quality_score BETWEEN 0 AND 100", name="quality_score"),
    )

    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sources.id"))
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    value: Mapped[float | None] = mapped_column(Price)
    open: Mapped[float | None] = mapped_column(Price)
    high: Mapped[float | None] = mapped_column(Price)
    low: Mapped[float | None] = mapped_column(Price)
    close: Mapped[float | None] = mapped_column(Price)
    volume: Mapped[float | None] = mapped_column(Price)
    quality_score: Mapped[float | None] = mapped_column(REAL)
    is_anomaly: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class MarketCalendar(Base):
    """Trading days and sessions per calendar ('XNYS', '24/7', ...) — seed 003."""

    __tablename__ = "market_calendar"

    calendar: Mapped[str] = mapped_column(Text, primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean)
    open_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    close_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    note: Mapped[str | None] = mapped_column(Text)


class TimeIndex(Base):
    """Dense time grid per interval, joined against data to find gaps — seed 003."""

    __tablename__ = "time_index"

    interval: Mapped[str] = mapped_column(Text, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp, primary_key=True)
    is_trading_time: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
