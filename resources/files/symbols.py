"""Other tools' instrument names -> the ccxt unified symbol, the one identity of an instrument here.

The one place that maps the field's file-name conventions (issue 13, item 1):

| convention | name | market | unified |
|---|---|---|---|
| freqtrade | `BTC_USDT` | spot | `BTC/USDT` |
| freqtrade (under `futures/`) | `BTC_USDT_USDT` | linear perpetual | `BTC/USDT:USDT` |
| Binance | `BTCUSDT` | spot (`data/spot/`) | `BTC/USDT` |
| Binance | `BTCUSDT` | USDⓈ-M (`data/futures/um/`) | `BTC/USDT:USDT` |
| Binance | `BTCUSDT_261225` | USDⓈ-M quarterly | `BTC/USDT:USDT-261225` |
| Binance | `BTCUSD_PERP` | COIN-M (`data/futures/cm/`) | `BTC/USD:BTC` |
| Binance | `BTCUSD_261225` | COIN-M quarterly | `BTC/USD:BTC-261225` |

A concatenated Binance name is split at a known quote currency (`QUOTES`, longest first: `FDUSD` before
`USD`). A name that no known quote ends, or that would leave a one-letter base, cannot be split safely: it
fails the file with a reason (`SymbolError`), since a wrong split would store the candles under another
instrument.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.naming import QUOTES

SPOT, USDM, COINM = "spot", "um", "cm"
MARKETS = (SPOT, USDM, COINM)
_NAME = re.compile(r"^[A-Z0-9]+$")
_DATED = re.compile(r"^\d{6}$")  # YYMMDD, as Binance and ccxt write a delivery date
# Quotes a USDⓈ-M contract settles in (its quote is its settle currency).
_USDM_SETTLE = frozenset({"USDT", "USDC", "BUSD", "FDUSD"})


class SymbolError(LandingFileError):
    """A name that cannot be mapped to one unified symbol; the message says why."""


def split_pair(name: str, *, context: str) -> tuple[str, str]:
    """'BTCUSDT' -> ('BTC', 'USDT') by the longest known quote currency ending it.

    `context` names where the name comes from, for the error.
    """
    upper = name.upper()
    if not _NAME.match(upper):
        raise SymbolError(f"{context}: {name!r} is not a concatenated pair name (letters and digits only)")
    candidates = [(upper[: -len(quote)], quote) for quote in QUOTES if upper.endswith(quote)]
    plausible = [(base, quote) for base, quote in candidates if len(base) >= 2]
    if plausible:
        return plausible[0]  # the longest known quote: BTCFDUSD is BTC/FDUSD, not BTCFD/USD
    if candidates:
        leaves = ", ".join(f"the quote {quote} leaves the base {base!r}" for base, quote in candidates)
        raise SymbolError(
            f"{context}: {name!r} is ambiguous: {leaves}; name the file with a separator (BASE_QUOTE)"
        )
    raise SymbolError(
        f"{context}: {name!r} is ambiguous: no known quote currency ({', '.join(QUOTES)}) ends it, so the "
        "base and quote cannot be told apart; name the file with a separator (BASE_QUOTE)"
    )


def freqtrade_symbol(pair: str, *, futures: bool) -> str:
    """freqtrade's file pair ('BTC_USDT', under `futures/` 'BTC_USDT_USDT') -> 'BTC/USDT[:USDT]'.

    freqtrade writes `pair.replace('/', '_').replace(':', '_')`; a futures pair always has a settle part.
    """
    parts = pair.upper().split("_")
    if any(not p or not _NAME.match(p) for p in parts):
        raise SymbolError(f"freqtrade pair {pair!r} is not BASE_QUOTE[_SETTLE]")
    if futures:
        if len(parts) == 3:
            return f"{parts[0]}/{parts[1]}:{parts[2]}"
        if len(parts) == 4 and _DATED.match(parts[3]):
            return f"{parts[0]}/{parts[1]}:{parts[2]}-{parts[3]}"
        raise SymbolError(
            f"freqtrade futures pair {pair!r} has no settle currency (expected BASE_QUOTE_SETTLE, "
            "e.g. BTC_USDT_USDT)"
        )
    if len(parts) != 2:
        raise SymbolError(
            f"freqtrade spot pair {pair!r} is not BASE_QUOTE (a BASE_QUOTE_SETTLE pair belongs under futures/)"
        )
    return f"{parts[0]}/{parts[1]}"


def binance_symbol(name: str, market: str) -> str:
    """A Binance symbol in its market ('spot', 'um' = USDⓈ-M, 'cm' = COIN-M) -> the unified symbol."""
    if market not in MARKETS:
        raise ValueError(f"unknown Binance market {market!r} (expected one of {', '.join(MARKETS)})")
    upper = name.upper()
    context = f"Binance {market} symbol"
    if market == SPOT:
        base, quote = split_pair(upper, context=context)
        return f"{base}/{quote}"
    pair, _, suffix = upper.partition("_")
    base, quote = split_pair(pair, context=context)
    if market == USDM:
        if quote not in _USDM_SETTLE:
            raise SymbolError(
                f"{context} {name!r}: quote {quote} is not a USDⓈ-M settle currency "
                f"({', '.join(sorted(_USDM_SETTLE))}); a COIN-M contract belongs under futures/cm/"
            )
        return _contract(f"{base}/{quote}:{quote}", suffix, name, context, perpetual_suffix="")
    if quote != "USD":
        raise SymbolError(f"{context} {name!r}: COIN-M contracts are quoted in USD, not {quote}")
    if not suffix:
        raise SymbolError(
            f"{context} {name!r}: expected _PERP or a delivery date (BTCUSD_PERP, BTCUSD_261225)"
        )
    return _contract(f"{base}/USD:{base}", suffix, name, context, perpetual_suffix="PERP")


def _contract(unified: str, suffix: str, name: str, context: str, *, perpetual_suffix: str) -> str:
    """A perpetual (no suffix, or _PERP) or a dated future (_YYMMDD) of `unified`."""
    if suffix == perpetual_suffix:
        return unified
    if _DATED.match(suffix):
        return f"{unified}-{suffix}"
    raise SymbolError(
        f"{context} {name!r}: suffix {suffix!r} is neither a perpetual nor a YYMMDD delivery date"
    )


def instrument_fields(symbol: str) -> dict[str, Any]:
    """The `instruments` fields a ccxt unified symbol itself tells (type, base/quote/settle, linear or
    inverse, expiry, strike, option type), so a file-only instrument is described without the exchange:
    `BTC/USDT`, `BTC/USDT:USDT`, `BTC/USDT:USDT-261225`, `BTC/USD:BTC-261225-100000-C`."""
    pair, _, contract = symbol.partition(":")
    base, _, quote = pair.partition("/")
    settle, *suffix = contract.split("-") if contract else [None]
    if not base or not quote or (contract and not settle) or len(suffix) not in (0, 1, 3):
        raise SymbolError(
            f"{symbol!r} is not a ccxt unified symbol (BASE/QUOTE[:SETTLE[-YYMMDD[-STRIKE-C|P]]])"
        )
    if suffix and not _DATED.match(suffix[0]):
        raise SymbolError(f"{symbol!r}: expiry {suffix[0]!r} is not YYMMDD")
    kind = "spot" if not contract else {0: "swap", 1: "future", 3: "option"}[len(suffix)]
    if kind == "option" and suffix[2] not in ("C", "P"):
        raise SymbolError(f"{symbol!r}: option type {suffix[2]!r} is not C or P")
    derivative = kind != "spot"
    return {
        "type": kind,
        "base": base,
        "quote": quote,
        "settle": settle,
        "linear": settle == quote if derivative else None,
        "inverse": settle == base if derivative else None,
        "expiry": pd.Timestamp(f"20{suffix[0]}", tz="UTC") if suffix else None,  # the day (hour: venue's)
        "strike": float(suffix[1]) if kind == "option" else None,
        "option_type": {"C": "call", "P": "put"}.get(suffix[2]) if kind == "option" else None,
    }


# Tardis exchange ids -> (ccxt exchange id, how its symbols are named).
_TARDIS = {
    "binance": ("binance", "binance-spot"),
    "binance-futures": ("binance", "binance-um"),
    "binance-delivery": ("binance", "binance-cm"),
    "bybit-spot": ("bybit", "binance-spot"),  # BTCUSDT, as Binance spot names it
    "bybit": ("bybit", "bybit-derivatives"),
    "okex": ("okx", "okx"),
    "okex-swap": ("okx", "okx"),
    "okex-futures": ("okx", "okx"),
    "deribit": ("deribit", "deribit"),
    "bitmex": ("bitmex", "bitmex"),
}
_DERIBIT_DATED = re.compile(r"^(?P<day>\d{1,2})(?P<month>[A-Z]{3})(?P<year>\d{2})$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def tardis_exchange(exchange: str) -> str:
    """A Tardis exchange id -> the ccxt exchange id ('binance-futures' -> 'binance')."""
    return _tardis_entry(exchange)[0]


def _tardis_entry(exchange: str) -> tuple[str, str]:
    try:
        return _TARDIS[exchange.lower()]
    except KeyError:
        raise SymbolError(
            f"Tardis exchange {exchange!r} is not mapped to a ccxt exchange (known: {', '.join(_TARDIS)})"
        ) from None


def tardis_instrument(exchange: str, name: str) -> tuple[str, str]:
    """A Tardis exchange id and its exchange-native symbol -> (ccxt exchange id, unified symbol)."""
    ccxt_id, convention = _tardis_entry(exchange)
    upper = name.upper()
    context = f"Tardis {exchange} symbol"
    if convention.startswith("binance-"):
        return ccxt_id, binance_symbol(upper, convention.removeprefix("binance-"))
    if convention == "bybit-derivatives":
        base, quote = split_pair(upper, context=context)
        if quote == "USD":
            return ccxt_id, f"{base}/USD:{base}"
        return ccxt_id, f"{base}/{quote}:{quote}"
    if convention == "okx":
        return ccxt_id, _okx_symbol(upper, context)
    if convention == "deribit":
        return ccxt_id, _deribit_symbol(upper, context)
    if upper == "XBTUSD" or upper.endswith("USD"):  # BitMEX inverse perpetuals: XBTUSD, ETHUSD
        base = upper.removesuffix("USD")
        base = "BTC" if base == "XBT" else base
        return ccxt_id, f"{base}/USD:{base}"
    raise SymbolError(f"{context} {name!r}: only BitMEX's inverse perpetuals (XBTUSD, ETHUSD) are mapped")


def _okx_symbol(name: str, context: str) -> str:
    """OKX: BTC-USDT (spot), BTC-USDT-SWAP (linear), BTC-USD-SWAP (inverse), BTC-USD-261225 (dated)."""
    parts = name.split("-")
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 3:
        base, quote, kind = parts
        settle = base if quote == "USD" else quote
        if kind == "SWAP":
            return f"{base}/{quote}:{settle}"
        if _DATED.match(kind):
            return f"{base}/{quote}:{settle}-{kind}"
    raise SymbolError(f"{context} {name!r}: expected BASE-QUOTE, BASE-QUOTE-SWAP or BASE-QUOTE-YYMMDD")


def _deribit_symbol(name: str, context: str) -> str:
    """Deribit inverse contracts: BTC-PERPETUAL -> BTC/USD:BTC, BTC-27DEC24 -> BTC/USD:BTC-241227."""
    base, _, kind = name.partition("-")
    if kind == "PERPETUAL":
        return f"{base}/USD:{base}"
    dated = _DERIBIT_DATED.match(kind)
    if dated and dated.group("month") in _MONTHS:
        month = _MONTHS.index(dated.group("month")) + 1
        return f"{base}/USD:{base}-{dated.group('year')}{month:02d}{int(dated.group('day')):02d}"
    raise SymbolError(f"{context} {name!r}: only perpetuals and dated futures (BTC-27DEC24) are mapped")
