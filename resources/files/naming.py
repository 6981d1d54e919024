"""Exchange, symbol and interval of a landed file, from its path when the content does not say.

Conventions understood (relative to the landing folder):
- `binance/BTC_USDT-1m.json`, `binance/BTCUSDT_1h.json.gz`, `binance_ETH-USDT_4h.ndjson`: an exchange is a
  path part or name token that is a ccxt exchange id; the interval is a token like `1m`, `4h`, `1d`, `1w`,
  `1M` (month) or `15min`, `1hour`, `1day`; the symbol is what remains (`BTC_USDT`, `BTC-USDT`, `BTCUSDT`).
- Hive-style parts name any field explicitly: `exchange=nasdaq/symbol=AAPL/interval=1d/part-0.json`.
Date tokens (`2024-01`, `20240101`) and folder words such as `spot`, `klines`, `monthly` are ignored.

A path that says futures (a `futures/` folder, a freqtrade candle type such as `-1h-mark`) is reported in
`PathNames.derivative`: unless it follows a known layout (`resources.files.archives`, which maps it to its
instrument), it is refused rather than stored as the spot pair. A trades file name (`<PAIR>-trades.<ext>`)
is reported in `PathNames.trades`.

An interval, from the path or the file, is checked against the median spacing of the candles: a file named
`-1h` holding minute candles is refused rather than stored under the wrong key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.intervals import IntervalError, parse_interval

# Quote currencies, longest first, to split concatenated pairs such as BTCUSDT or ETHBTC.
QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "USDE", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BRL",
    "AUD", "KRW", "BTC", "ETH", "BNB", "SOL",
)  # fmt: skip
_STOP_WORDS = {
    "spot", "futures", "future", "um", "cm", "swap", "perp", "perpetual", "margin", "klines", "kline",
    "ohlcv", "ohlc", "candles", "candle", "bars", "data", "history", "historical", "daily", "monthly",
    "weekly", "hourly", "json", "ndjson", "jsonl", "gz", "export", "exports", "dump", "landing", "part",
}  # fmt: skip
_FILE_SUFFIXES = {
    ".json", ".ndjson", ".jsonl", ".gz", ".gzip", ".txt", ".csv", ".tsv", ".psv", ".tab", ".zip", ".parquet",
    ".pq", ".feather", ".fea", ".arrow", ".arrows", ".ipc", ".h5", ".hdf5",
}  # fmt: skip
# Derivatives told by a path: a folder 'futures' (freqtrade's <exchange>/futures/, Binance Vision's
# data/futures/um|cm/), or a freqtrade candle type after the timeframe (PAIR-1h-mark.feather).
_FUTURES_FOLDER = "futures"
_FREQTRADE_CANDLE_TYPE = re.compile(r"-\d+[A-Za-z]{1,2}-(futures|mark|index|premiumIndex|funding_rate)$")
_INTERVAL_TOKEN = re.compile(
    r"^(?P<n>[1-9][0-9]*)(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|"
    r"M|mo|mons?|months?|y|years?)$",
    re.IGNORECASE,
)
_UNIT_WORDS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "mo": "M", "mon": "M", "mons": "M", "month": "M", "months": "M",
    "y": "y", "year": "y", "years": "y",
}  # fmt: skip
# Largest first: a duration is written in the largest unit dividing it exactly (60m -> 1h, 24h -> 1d).
_FIXED = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_MONTH_DAYS = (28, 31)
_YEAR_DAYS = (365, 366)


@dataclass
class PathNames:
    """What a file's path says about its content; None where it says nothing."""

    exchange: str | None = None
    symbol: str | None = None
    interval: str | None = None
    warnings: list[str] = field(default_factory=list)
    derivative: str | None = None  # why the path says the file holds futures data, if it does
    trades: bool = False  # freqtrade's trades file name, <PAIR>-trades.<ext>: single trades, not candles


@functools.cache
def ccxt_exchange_ids() -> frozenset[str]:
    import ccxt

    return frozenset(ccxt.exchanges)


def canonical_interval(text: str | float | int) -> str:
    """'60min' -> '1h', '1day' -> '1d', '1M' -> '1M', 3600 (seconds) -> '1h'; `LandingFileError` otherwise.

    One series must have one spelling: the interval is part of the candle's key.
    """
    if isinstance(text, int | float | np.integer | np.floating) and not isinstance(text, bool):
        seconds = float(text)
        if seconds <= 0 or not seconds.is_integer():
            raise LandingFileError(f"interval {text!r} is not a positive whole number of seconds")
        return _seconds_to_interval(int(seconds))
    match = _INTERVAL_TOKEN.match(str(text).strip())
    if match is None:
        raise LandingFileError(f"interval {text!r} is not understood (expected e.g. '1m', '4h', '1d', '1M')")
    unit = match.group("unit")
    code = unit if unit in {"m", "M"} else _UNIT_WORDS[unit.lower()]
    count = int(match.group("n"))
    if code in {"M", "y"}:
        return f"{count}{code}"
    seconds = count * dict(_FIXED)[code]
    return _seconds_to_interval(seconds)


def _seconds_to_interval(seconds: int) -> str:
    for code, size in _FIXED:
        if seconds % size == 0:
            interval = f"{seconds // size}{code}"
            parse_interval(interval)
            return interval
    raise AssertionError("unreachable: every whole number of seconds divides by 1 s")


def normalize_symbol(raw: str) -> str:
    """'BTCUSDT', 'btc_usdt', 'BTC-USDT' -> 'BTC/USDT' (ccxt's unified form); other names stay as given.

    ccxt-style symbols ('BTC/USDT', 'BTC/USDT:USDT') are kept; a name without a known quote currency
    (a stock ticker) is only upper-cased.
    """
    text = str(raw).strip()
    if "/" in text:
        return text.upper()
    parts = [p for p in re.split(r"[-_ ]", text) if p]
    if len(parts) == 2:
        return f"{parts[0].upper()}/{parts[1].upper()}"
    upper = text.upper()
    if len(parts) == 1:
        for quote in QUOTES:
            if upper.endswith(quote) and len(upper) - len(quote) >= 2:
                return f"{upper[: -len(quote)]}/{quote}"
    return upper


def names_from_path(relative_path: str) -> PathNames:
    """Exchange, symbol and interval told by a path relative to the landing folder."""
    path = PurePosixPath(relative_path)
    stem = path.name
    while PurePosixPath(stem).suffix.lower() in _FILE_SUFFIXES:
        stem = stem[: -len(PurePosixPath(stem).suffix)]
    names = PathNames(derivative=_derivative(path, stem), trades=stem.lower().endswith("-trades"))
    explicit: dict[str, str] = {}
    folder_tokens: list[list[str]] = []
    for part in [*path.parent.parts, stem]:
        if "=" in part:
            key, _, value = part.partition("=")
            explicit[key.strip().lower()] = value.strip()
            continue
        folder_tokens.append([t for t in re.split(r"[-_. ]+", part) if t])
    exchanges = ccxt_exchange_ids()
    symbol_tokens: list[list[str]] = []
    for tokens in folder_tokens:
        rest = []
        for token in tokens:
            lower = token.lower()
            if lower in exchanges:
                names.exchange = names.exchange or lower
            elif _INTERVAL_TOKEN.match(token):
                names.interval = names.interval or canonical_interval(token)
            elif lower in _STOP_WORDS or token.isdigit() or not re.search(r"[A-Za-z]", token):
                continue
            else:
                rest.append(token)
        if rest:
            symbol_tokens.append(rest)
    if "exchange" in explicit:
        names.exchange = explicit["exchange"].lower()
    if "interval" in explicit or "timeframe" in explicit:
        names.interval = canonical_interval(explicit.get("interval") or explicit["timeframe"])
    if "symbol" in explicit:
        names.symbol = normalize_symbol(explicit["symbol"])
    elif symbol_tokens:
        # The file name's own tokens win over its folders' (binance/BTCUSDT/1m/BTCUSDT-1m-2024-01.json).
        tokens = symbol_tokens[-1]
        names.symbol = _symbol_from_tokens(tokens)
        if names.symbol is None:
            names.warnings.append(f"could not tell the symbol from the name {path.name!r} (tokens {tokens})")
    return names


def _derivative(path: PurePosixPath, stem: str) -> str | None:
    if any(part.lower() == _FUTURES_FOLDER for part in path.parent.parts):
        return f"the folder '{_FUTURES_FOLDER}/'"
    match = _FREQTRADE_CANDLE_TYPE.search(stem)
    return f"freqtrade candle type '{match.group(1)}'" if match else None


def _symbol_from_tokens(tokens: list[str]) -> str | None:
    """A pair (two tokens, or one splitting on a quote currency) or an upper-case ticker such as AAPL.

    A lone lower-case word ('prices', 'archive') is a name, not a symbol: better no symbol than a wrong one.
    """
    if len(tokens) == 2:
        return f"{tokens[0].upper()}/{tokens[1].upper()}"
    if len(tokens) == 1:
        symbol = normalize_symbol(tokens[0])
        if "/" in symbol or tokens[0].isupper():
            return symbol
        return None
    # More words ('BTC_USDT-1h-export'): a token followed by a quote currency, else one pair-like token.
    adjacent = [(b, q) for b, q in zip(tokens, tokens[1:], strict=False) if q.upper() in QUOTES]
    for base, quote in sorted(adjacent, key=lambda pair: not (pair[0].isupper() and pair[1].isupper())):
        return f"{base.upper()}/{quote.upper()}"
    pairs = {normalize_symbol(t) for t in tokens} - {t.upper() for t in tokens}
    return pairs.pop() if len(pairs) == 1 else None


def describe_spacing(seconds: float) -> str:
    """A median spacing in words, e.g. '1m (60 s)'."""
    if seconds > 0 and float(seconds).is_integer():
        return f"{_seconds_to_interval(int(seconds))} ({int(seconds)} s)"
    return f"{seconds:g} s"


def median_spacing_seconds(times: pd.Series) -> float | None:
    """Median gap between consecutive distinct times, in seconds; None with fewer than two times."""
    values = times.dropna().to_numpy(dtype="datetime64[us]").astype("int64")
    if values.size < 2 or not (np.diff(values) > 0).all():  # sorted and distinct already: the usual file
        values = np.unique(values)
    if values.size < 2:
        return None
    return float(np.median(np.diff(values))) / 1e6


def interval_matches_spacing(interval: str, seconds: float) -> bool:
    """True when a median spacing fits the interval; months and years allow their calendar lengths."""
    count, unit = parse_interval(interval)
    days = seconds / 86_400
    if unit == "M":
        return count * _MONTH_DAYS[0] <= days <= count * _MONTH_DAYS[1]
    if unit == "y":
        return count * _YEAR_DAYS[0] <= days <= count * _YEAR_DAYS[1]
    return abs(seconds - count * dict(_FIXED)[unit]) < 1e-6


def interval_from_spacing(seconds: float) -> str:
    """The interval a median spacing stands for (calendar months and years included)."""
    days = seconds / 86_400
    if _MONTH_DAYS[0] <= days <= _MONTH_DAYS[1]:
        return "1M"
    if _YEAR_DAYS[0] <= days <= _YEAR_DAYS[1]:
        return "1y"
    if seconds <= 0 or not float(seconds).is_integer():
        raise LandingFileError(f"the candles are not evenly spaced (median spacing {seconds:g} s)")
    return _seconds_to_interval(int(seconds))


def resolve_interval(
    times: pd.Series, declared: str | None, *, origin: str, series: str
) -> tuple[str, str | None]:
    """The interval of one series: the declared one checked against the data, or one inferred from it.

    Returns (interval, warning or None). `origin` says where `declared` came from, for the messages.
    """
    spacing = median_spacing_seconds(times)
    if declared is not None:
        try:
            parse_interval(declared)
        except IntervalError as exc:
            raise LandingFileError(str(exc)) from None
        if spacing is None:
            return declared, f"{series}: one candle only, interval {declared!r} ({origin}) not checked"
        if not interval_matches_spacing(declared, spacing):
            raise LandingFileError(
                f"{series}: interval {declared!r} ({origin}) does not match the data, whose median spacing "
                f"between candles is {describe_spacing(spacing)}"
            )
        return declared, None
    if spacing is None:
        raise LandingFileError(
            f"{series}: one candle and no interval; name it in the path (e.g. BTC_USDT-1h.json) "
            "or add an 'interval' field"
        )
    interval = interval_from_spacing(spacing)
    return interval, f"{series}: interval {interval!r} inferred from the median spacing of the candles"
