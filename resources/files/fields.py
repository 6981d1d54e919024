"""The field vocabulary of landed candle files: canonical names, their aliases, and name -> field mapping.

Every reader (JSON layouts, CSV headers, Parquet/Arrow schemas) names its columns differently; this module
is the one place that says which source name means which canonical field, so a new alias or a new reader
never repeats the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

CANONICAL = (
    "exchange", "symbol", "interval", "time", "open", "high", "low", "close", "volume",
    "quote_volume", "trades_count", "vwap",
)  # fmt: skip
PRICES = ("open", "high", "low", "close", "volume")
OPTIONAL = ("quote_volume", "trades_count", "vwap")
META_FIELDS = ("exchange", "symbol", "interval", "timezone")
INDEX_COLUMN = "__index__"  # a pandas orient's index, kept as a column: it may hold the times

# Field names after folding (lower case, no '_', '-', ' '), most specific first. One-letter names are
# matched case-sensitively: in Binance's stream format 't' is the open time but 'T' the close time, 'v' the
# base volume but 'V' the taker-buy volume.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": (
        "opentime", "timestamp", "time", "datetime", "date", "t", "ts", "mts", "starttime", "start",
        "timeopen", "timeperiodstart", "periodstart", "begin", "candlestart",
    ),
    "open": ("open", "o", "openprice", "priceopen"),
    "high": ("high", "h", "highprice", "pricehigh"),
    "low": ("low", "l", "lowprice", "pricelow"),
    "close": ("close", "c", "closeprice", "priceclose"),
    "volume": ("volume", "v", "vol", "basevolume", "volumebase", "baseassetvolume", "volumetraded"),
    "quote_volume": ("quotevolume", "quoteassetvolume", "volumequote", "quotevol", "qv", "q", "turnover"),
    "trades_count": ("tradescount", "trades", "numberoftrades", "numtrades", "tradecount", "count", "n"),
    "vwap": ("vwap", "vw"),
    "symbol": ("symbol", "pair", "ticker", "instrument", "instrumentid", "instid", "market", "s"),
    "exchange": ("exchange", "venue", "exchangeid"),
    "interval": ("interval", "timeframe", "tf", "resolution", "i"),
    "timezone": ("timezone", "tz", "timezonename"),
}  # fmt: skip
# Single trades (freqtrade, Binance trades and aggTrades, Tardis, ccxt) -> `market_trades`. Binance's
# one-letter aggTrades names: 'a' id, 'p' price, 'q' quantity, 'T' time, 'm' buyer is maker.
TRADE_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("timestamp", "transacttime", "time", "T", "datetime", "date", "ts"),
    "trade_id": ("id", "tradeid", "aggtradeid", "a", "aggid"),
    "price": ("price", "p"),
    "amount": ("amount", "qty", "quantity", "size", "q", "baseqty"),
    "cost": ("cost", "quoteqty", "quotequantity", "quoteamount"),
    "side": ("side", "takerside"),
    "is_buyer_maker": ("isbuyermaker", "buyermaker", "m"),
    "symbol": ALIASES["symbol"],
    "exchange": ALIASES["exchange"],
}  # fmt: skip
# Funding rates (Binance Vision fundingRate, Tardis derivative_ticker, ccxt) -> `funding_rates`.
FUNDING_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("calctime", "fundingtime", "fundingtimestamp", "timestamp", "time", "date", "datetime"),
    "rate": ("lastfundingrate", "fundingrate", "rate"),
    "interval_hours": ("fundingintervalhours", "intervalhours"),
    "mark_price": ("markprice",),
    "index_price": ("indexprice",),
    "symbol": ALIASES["symbol"],
    "exchange": ALIASES["exchange"],
}  # fmt: skip
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
_OHLC = frozenset({"open", "high", "low", "close"})


def fold(name: Any) -> str:
    """A source name as compared with the aliases: one-letter names keep their case."""
    text = str(name).strip()
    return text if len(text) == 1 else re.sub(r"[\s_\-]", "", text.lower())


def field_of(name: Any) -> str | None:
    """The canonical field a source name stands for, if any."""
    folded = fold(name)
    found = _LOOKUP.get(folded)
    if found is None and len(folded) == 1:
        return None  # 'T', 'V', 'Q', ...: case matters for one-letter names
    return found


def has_field(names: Iterable[Any], name: str) -> bool:
    return any(field_of(n) == name for n in names)


def ohlc_count(names: Iterable[Any]) -> int:
    """How many of open/high/low/close the names cover: the signature of a candle row or header."""
    return sum(1 for n in names if field_of(n) in _OHLC)


def looks_like_trades(names: Iterable[Any]) -> bool:
    """Rows of single trades (a price and an amount), not candles: freqtrade, Binance and Tardis trades."""
    folded = {fold(n) for n in names}
    return "price" in folded and bool(folded & {"amount", "qty", "quantity", "size"})


def map_fields(
    columns: list[Any], aliases_of: dict[str, tuple[str, ...]] = ALIASES
) -> tuple[dict[str, Any], list[str]]:
    """Canonical field -> source column by alias priority (candles' aliases unless told); plus the names
    left unused."""
    by_alias: dict[str, Any] = {}
    for column in columns:
        by_alias.setdefault(fold(column), column)
    mapping: dict[str, Any] = {}
    for name, aliases in aliases_of.items():
        for alias in aliases:
            if alias in by_alias and by_alias[alias] not in mapping.values():
                mapping[name] = by_alias[alias]
                break
    unused = [str(c) for c in columns if c not in mapping.values()]
    return mapping, unused
