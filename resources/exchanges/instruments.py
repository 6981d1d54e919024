"""What the exchange says its instruments are: ccxt markets as `instruments` rows, and which symbols to pull.

ccxt's `load_markets()` is the one source (the synthetic exchange answers it too). A market becomes a row of
the `instruments` table keyed by (exchange, ccxt unified symbol); tick and lot sizes are read according to
the exchange's `precisionMode` (ccxt gives a tick size, a number of decimals, or significant digits, which
has no fixed tick and is stored as unknown). Pulls ask only for symbols the markets know and that are active
(unless the universe says `include_inactive: true`); every other symbol is skipped with its reason. The rows
are written by the storage API's `upsert_instruments` (never deletes; first/last seen kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt
import pandas as pd

from market_warehouse.resources.models import INSTRUMENT_TYPES

_OPTION_TYPES = {"call": "call", "put": "put", "c": "call", "p": "put"}
INSTRUMENT_COLUMNS = [
    "exchange",
    "symbol",
    "type",
    "base",
    "quote",
    "settle",
    "exchange_symbol",
    "contract_size",
    "linear",
    "inverse",
    "expiry",
    "strike",
    "option_type",
    "tick_size",
    "lot_size",
    "active",
    "listed_at",
    "source",
    "info",
]


def step_size(value: Any, precision_mode: int) -> float | None:
    """A price or amount step from ccxt's `precision` entry under the exchange's `precisionMode`."""
    if value is None:
        return None
    if precision_mode == ccxt.TICK_SIZE:
        return float(value)
    if precision_mode == ccxt.DECIMAL_PLACES:
        return 10.0 ** -int(value)
    return None  # SIGNIFICANT_DIGITS: the step depends on the price, there is no fixed tick


def instrument_row(market: Mapping[str, Any], exchange: str, precision_mode: int, source: str) -> dict:
    """One `instruments` row from a ccxt market structure (unified fields only, the raw one in `info`)."""
    precision = market.get("precision") or {}
    derivative = market.get("type") != "spot"
    created, expiry = market.get("created"), market.get("expiry")
    return {
        "exchange": exchange,
        "symbol": market["symbol"],
        "type": market.get("type"),
        "base": market.get("base"),
        "quote": market.get("quote"),
        "settle": market.get("settle"),
        "exchange_symbol": market.get("id"),
        "contract_size": _float(market.get("contractSize")),
        "linear": market.get("linear") if derivative else None,
        "inverse": market.get("inverse") if derivative else None,
        "expiry": pd.Timestamp(int(expiry), unit="ms", tz="UTC") if expiry else None,
        "strike": _float(market.get("strike")),
        "option_type": _OPTION_TYPES.get(str(market.get("optionType") or "").lower()),
        "tick_size": step_size(precision.get("price"), precision_mode),
        "lot_size": step_size(precision.get("amount"), precision_mode),
        "active": market.get("active") is not False,  # ccxt: None means the exchange does not say
        "listed_at": pd.Timestamp(int(created), unit="ms", tz="UTC") if created else None,
        "source": source,
        "info": dict(market.get("info") or {}),
    }


def instruments_frame(
    markets: Mapping[str, Mapping[str, Any]], exchange: str, precision_mode: int, source: str
) -> pd.DataFrame:
    """The `instruments` rows of `markets` (ccxt's `load_markets()` answer), of the four known types."""
    rows = [
        instrument_row(m, exchange, precision_mode, source)
        for m in markets.values()
        if m.get("type") in INSTRUMENT_TYPES
    ]
    return pd.DataFrame(rows, columns=INSTRUMENT_COLUMNS)


@dataclass(frozen=True)
class Selection:
    """The symbols a pull may ask for; the inactive ones skipped (reported) and the unknown ones (failed,
    after the others are loaded: a typo must not pass as an empty series)."""

    symbols: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    contracts: frozenset[str] = frozenset()  # of `symbols`: swaps, futures, options (mark/index prices)

    def notes(self) -> list[str]:
        return [f"{symbol}: {reason}" for symbol, reason in self.skipped.items()]

    def check(self, exchange: str) -> None:
        """Raise ccxt's `BadSymbol` (not transient: never retried) naming the symbols the exchange lacks."""
        if self.unknown:
            raise ccxt.BadSymbol(
                f"{exchange}: {', '.join(self.unknown)} not among the exchange's markets (load_markets): "
                "check the ccxt unified symbol (spot BASE/QUOTE, perpetual BASE/QUOTE:SETTLE); the other "
                "symbols were pulled"
            )


def select_symbols(
    markets: Mapping[str, Mapping[str, Any]], wanted: Iterable[str], include_inactive: bool
) -> Selection:
    """`wanted` split into pullable symbols, inactive ones (skipped unless `include_inactive`) and ones the
    exchange does not list."""
    keep, skipped, unknown = [], {}, []
    for symbol in dict.fromkeys(wanted):
        market = markets.get(symbol)
        if market is None:
            unknown.append(symbol)
        elif market.get("active") is False and not include_inactive:
            skipped[symbol] = (
                "inactive on the exchange (delisted or halted); `include_inactive: true` pulls it"
            )
        else:
            keep.append(symbol)
    contracts = frozenset(s for s in keep if markets[s].get("contract") or markets[s].get("type") != "spot")
    return Selection(tuple(keep), skipped, tuple(unknown), contracts)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
