"""Known archive layouts, told by a file's path: what dataset it holds, of which instrument and price kind.

- freqtrade: `<exchange>/[futures/]<PAIR>-<tf>[-<candle_type>].<json|json.gz|feather|parquet>` and
  `<exchange>/[futures/]<PAIR>-trades.<ext>`. Candle types are freqtrade's `CandleType` values: `futures`
  (the perpetual's trade candles), `mark`, `index`, `premiumIndex`, `funding_rate` (freqtrade keeps the rate
  in the `open` column of an 8h/1h candle frame). `1Mo` is one month.
- Binance Vision: `…/{spot|futures/um|futures/cm}/{daily|monthly}/<data type>/<SYMBOL>/[<interval>/]<file>.zip`
  with data types `klines`, `markPriceKlines`, `indexPriceKlines`, `premiumIndexKlines` (12-column klines),
  `trades`, `aggTrades` and `fundingRate`; a `<file>.CHECKSUM` beside it is verified by the loader.
- Tardis downloadable CSV: `<exchange>_<data type>_<YYYY-MM-DD>_<SYMBOL>.csv.gz` with data types `trades` and
  `derivative_ticker` (funding rates with the mark and index price at each funding time); a grouped file
  (`…_PERPETUALS.csv.gz`) maps each row's own symbol.

Paths are matched from their end, so an absolute path works as well as one relative to a landing folder.
A path of none of these layouts gives None: the generic naming (`resources.files.naming`) applies.
A path of one of them that cannot be mapped (an unknown data type, an ambiguous symbol) fails the file with
a reason (`LandingFileError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.naming import canonical_interval, ccxt_exchange_ids
from market_warehouse.resources.files.symbols import (
    SymbolError,
    binance_symbol,
    freqtrade_symbol,
    tardis_exchange,
    tardis_instrument,
)

OHLCV, TRADES, FUNDING = "ohlcv", "market_trades", "funding_rates"
PRICE_KINDS = ("trade", "mark", "index", "premium_index")

# freqtrade's CandleType values after the timeframe -> (dataset, price kind).
FREQTRADE_CANDLE_TYPES = {
    "spot": (OHLCV, "trade"),
    "futures": (OHLCV, "trade"),
    "mark": (OHLCV, "mark"),
    "index": (OHLCV, "index"),
    "premiumIndex": (OHLCV, "premium_index"),
    "funding_rate": (FUNDING, None),
}
_FREQTRADE_SUFFIXES = (".json.gz", ".jsongz", ".json", ".feather", ".parquet", ".h5")
_FREQTRADE_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,3})-(?:(?P<trades>trades)|(?P<tf>\d+(?:Mo|[smhdwMy]))"
    r"(?:-(?P<type>" + "|".join(FREQTRADE_CANDLE_TYPES) + r"))?)$"
)

# Binance Vision data types -> (dataset, price kind, column names of a header-less CSV).
KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
BINANCE_DATA_TYPES: dict[str, tuple[str, str | None, tuple[str, ...] | None]] = {
    "klines": (OHLCV, "trade", KLINE_COLUMNS),
    "markPriceKlines": (OHLCV, "mark", KLINE_COLUMNS),
    "indexPriceKlines": (OHLCV, "index", KLINE_COLUMNS),
    "premiumIndexKlines": (OHLCV, "premium_index", KLINE_COLUMNS),
    "trades": (TRADES, None, ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")),
    "aggTrades": (
        TRADES,
        None,
        (
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "transact_time",
            "is_buyer_maker",
            "is_best_match",
        ),
    ),  # fmt: skip
    "fundingRate": (FUNDING, None, ("calc_time", "funding_interval_hours", "last_funding_rate")),
}
_BINANCE_PERIODS = ("daily", "monthly")

_TARDIS_NAME = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_(?P<type>[a-z_0-9A-Z]+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<symbol>[^_]+)$"
)
TARDIS_DATA_TYPES = {"trades": TRADES, "derivative_ticker": FUNDING}
_TARDIS_GROUPS = frozenset({"SPOT", "FUTURES", "PERPETUALS", "OPTIONS"})


@dataclass(frozen=True)
class FileKind:
    """What a known layout's path says: dataset, instrument, price kind, interval."""

    layout: str  # 'freqtrade', 'binance-vision' or 'tardis'
    dataset: str  # 'ohlcv', 'market_trades' or 'funding_rates'
    data_type: str  # the layout's own word: a freqtrade candle type, a Binance or Tardis data type
    exchange: str | None
    symbol: str | None  # unified; None when each row names its own (`row_symbol` maps it)
    interval: str | None = None
    price: str | None = None  # ohlcv price kind
    columns: tuple[str, ...] | None = None  # names of a header-less CSV's columns
    rate_column: str | None = None  # the column holding a funding rate when its name does not say
    row_symbol: Callable[[str], str] | None = None  # exchange-native symbol of a row -> unified

    @property
    def description(self) -> str:
        """e.g. 'binance-vision:markPriceKlines'."""
        return f"{self.layout}:{self.data_type}"


def _stem(name: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


def identify(path: str | PurePosixPath) -> FileKind | None:
    """The known layout of a file (by its path, relative or absolute); None when it follows none."""
    posix = PurePosixPath(str(path).replace("\\", "/"))
    for matcher in (_binance_vision, _tardis, _freqtrade):
        kind = matcher(posix)
        if kind is not None:
            return kind
    return None


def _freqtrade(path: PurePosixPath) -> FileKind | None:
    stemmed = _stem(path.name, _FREQTRADE_SUFFIXES)
    if stemmed is None:
        return None
    match = _FREQTRADE_NAME.match(stemmed[0])
    if match is None:
        return None
    parents = path.parent.parts
    in_futures = bool(parents) and parents[-1] == "futures"
    exchange_folder = parents[-2 if in_futures else -1] if len(parents) > (1 if in_futures else 0) else None
    exchange = exchange_folder.lower() if exchange_folder else None
    if exchange not in ccxt_exchange_ids():
        return None  # not freqtrade's folder: the generic naming (and the file's own fields) decide
    candle_type = match.group("type") or ("futures" if in_futures else "spot")
    futures = in_futures or candle_type != "spot"
    symbol = freqtrade_symbol(match.group("pair"), futures=futures)
    if match.group("trades"):
        return FileKind("freqtrade", TRADES, "trades", exchange, symbol)
    dataset, price = FREQTRADE_CANDLE_TYPES[candle_type]
    interval = canonical_interval(match.group("tf"))
    return FileKind(
        "freqtrade",
        dataset,
        candle_type,
        exchange,
        symbol,
        interval=interval,
        price=price,
        rate_column="open" if dataset == FUNDING else None,
    )


def _binance_vision(path: PurePosixPath) -> FileKind | None:
    """`…/<market>/<period>/<data type>/<SYMBOL>/[<interval>/]<file>.zip`, matched from the end."""
    parts = path.parts
    for depth in (4, 5):  # <period> is 4th from the end without the <interval>/ folder, 5th with it
        if len(parts) < depth + 1:
            continue
        period, data_type, symbol = parts[-depth], parts[-depth + 1], parts[-depth + 2]
        if period not in _BINANCE_PERIODS:
            continue
        market = _binance_market(parts[:-depth])
        if market is None:
            continue
        return _binance_kind(path, market, data_type, symbol, parts[-2] if depth == 5 else None)
    return None


def _binance_market(before: tuple[str, ...]) -> str | None:
    if before[-1:] == ("spot",):
        return "spot"
    if len(before) >= 2 and before[-2] == "futures" and before[-1] in ("um", "cm"):
        return before[-1]
    return None


def _binance_kind(
    path: PurePosixPath, market: str, data_type: str, symbol: str, interval_folder: str | None
) -> FileKind:
    if data_type not in BINANCE_DATA_TYPES:
        raise LandingFileError(
            f"Binance Vision data type {data_type!r} is not loaded (loaded: {', '.join(BINANCE_DATA_TYPES)})"
        )
    dataset, price, columns = BINANCE_DATA_TYPES[data_type]
    if not path.name.upper().startswith(symbol.upper() + "-"):
        raise LandingFileError(
            f"Binance Vision file {path.name!r} is not named after its folder's symbol {symbol!r}"
        )
    native = symbol
    if market == "cm" and price == "index" and "_" not in native:
        native = f"{native}_PERP"  # COIN-M index klines are named by the pair: the perpetual's index
    interval = None
    if dataset == OHLCV:
        token = interval_folder or path.name.split("-")[1]
        interval = canonical_interval(token)
    exchange = "binance"
    return FileKind(
        "binance-vision",
        dataset,
        data_type,
        exchange,
        binance_symbol(native, market),
        interval=interval,
        price=price,
        columns=columns,
    )


def _tardis(path: PurePosixPath) -> FileKind | None:
    stemmed = _stem(path.name, (".csv.gz", ".csv"))
    if stemmed is None:
        return None
    match = _TARDIS_NAME.match(stemmed[0])
    if match is None:
        return None
    exchange, data_type, native = match.group("exchange"), match.group("type"), match.group("symbol")
    if data_type not in TARDIS_DATA_TYPES:
        raise LandingFileError(
            f"Tardis data type {data_type!r} is not loaded (loaded: {', '.join(TARDIS_DATA_TYPES)})"
        )
    dataset = TARDIS_DATA_TYPES[data_type]
    if native.upper() in _TARDIS_GROUPS:
        return FileKind(
            "tardis",
            dataset,
            data_type,
            tardis_exchange(exchange),
            None,
            row_symbol=lambda native: tardis_instrument(exchange, native)[1],
        )
    ccxt_id, symbol = tardis_instrument(exchange, native)
    return FileKind("tardis", dataset, data_type, ccxt_id, symbol)


__all__ = ["FileKind", "LandingFileError", "SymbolError", "identify"]
