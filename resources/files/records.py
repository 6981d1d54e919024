"""A reader's raw table -> rows of the datasets beyond candles: single trades (`market_trades`) and
funding rates (`funding_rates`). The candles' counterpart is `resources.files.canonical`; the steps are the
same and the shared pieces are reused (time parsing by magnitude per file, number typing, rejects).

Trades: freqtrade (`timestamp, id, type, side, price, amount, cost`, ms), Binance Vision `trades`
(`id, price, qty, quoteQty, time, isBuyerMaker[, isBestMatch]`) and `aggTrades` (`a, p, q, f, l, T, m[, M]`),
with or without a header, times in ms or µs told by magnitude; Tardis `trades` (µs). The side is the
taker's: a file without one has it from `is_buyer_maker` (the buyer made the book, so the taker sold); a
file without a cost has price x amount. Trade ids are kept as text (ints written without '.0').

Funding: Binance Vision `fundingRate` (`calc_time, funding_interval_hours, last_funding_rate`), freqtrade's
`-funding_rate` candles (the rate in `open`, the interval the file's timeframe), Tardis `derivative_ticker`
(each row an update of the rate that will be paid at `funding_timestamp`: the last update before that time
is the rate paid, stored at that time with its mark and index price).

A row whose time, price, amount or rate cannot be read is rejected with a rule and a message naming it,
for quarantine; a file fails (`LandingFileError`) when a required field is missing or no row is readable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.archives import FUNDING, TRADES, FileKind
from market_warehouse.resources.files.canonical import FileState, ParsedFile, empty_file
from market_warehouse.resources.files.fields import FUNDING_ALIASES, INDEX_COLUMN, TRADE_ALIASES, map_fields
from market_warehouse.resources.files.naming import PathNames
from market_warehouse.resources.files.readers.base import RawTable
from market_warehouse.resources.files.timestamps import parse_times
from market_warehouse.resources.files.values import Reject, constant_text, numbers

TRADE_COLUMNS = (
    "exchange", "symbol", "trade_id", "time", "price", "amount", "cost", "side", "is_buyer_maker",
)  # fmt: skip
FUNDING_COLUMNS = ("exchange", "symbol", "time", "rate", "mark_price", "index_price", "interval")
COLUMNS = {TRADES: TRADE_COLUMNS, FUNDING: FUNDING_COLUMNS}
_REQUIRED = {TRADES: ("time", "price", "amount"), FUNDING: ("time", "rate")}
_ALIASES = {TRADES: TRADE_ALIASES, FUNDING: FUNDING_ALIASES}
_TRUE, _FALSE = frozenset({"true", "1", "t", "yes"}), frozenset({"false", "0", "f", "no"})
_SIDES = {"buy": "buy", "sell": "sell", "b": "buy", "s": "sell", "bid": "buy", "ask": "sell"}


def empty_records(dataset: str, layout: str, *, format: str, container: str | None) -> ParsedFile:
    """A file of `dataset` without rows."""
    return empty_file(layout, format=format, container=container, dataset=dataset, columns=COLUMNS[dataset])


def _named(raw: RawTable, kind: FileKind | None) -> pd.DataFrame:
    """The raw rows under names: a header-less file's positions named by its layout's columns."""
    frame = raw.frame.drop(columns=[INDEX_COLUMN], errors="ignore")
    if frame.columns.empty or isinstance(frame.columns[0], str):
        return frame
    columns = (kind.columns if kind is not None else None) or ()
    width = len(frame.columns)
    if kind is not None and kind.layout == "freqtrade" and kind.dataset == TRADES:
        columns = ("timestamp", "id", "type", "side", "price", "amount", "cost")  # freqtrade's JSON rows
    if width > len(columns):
        raise LandingFileError(
            f"rows of {width} fields without a header: name the columns in a header row "
            f"({kind.description if kind else 'unknown layout'} expects {len(columns) or 'named'} fields)"
        )
    return frame.set_axis(list(columns[:width]), axis=1)


def _mapping(frame: pd.DataFrame, dataset: str, kind: FileKind | None) -> tuple[dict[str, Any], list[str]]:
    mapping, unused = map_fields(list(frame.columns), _ALIASES[dataset])
    if kind is not None and kind.rate_column is not None and "rate" not in mapping:
        mapping["rate"] = kind.rate_column
        unused = [c for c in unused if c != kind.rate_column]
    missing = [f for f in _REQUIRED[dataset] if f not in mapping]
    if missing:
        found = ", ".join(str(c) for c in frame.columns)
        raise LandingFileError(f"no {', '.join(missing)} field(s) for {dataset} rows (fields: {found})")
    return mapping, unused


def _booleans(raw: pd.Series) -> pd.Series:
    """'true'/'False'/1/True -> bool; anything else missing."""
    if raw.dtype.kind == "b":
        return raw.astype(object)
    text = raw.astype(str).str.strip().str.lower()
    out = pd.Series(None, index=raw.index, dtype=object)
    out[text.isin(_TRUE) | text.isin({"1.0"})] = True
    out[text.isin(_FALSE) | text.isin({"0.0"})] = False
    return out


def _ids(raw: pd.Series) -> pd.Series:
    """Trade ids as text; whole numbers without a '.0' (Arrow reads numeric text as float64)."""
    if raw.dtype.kind == "f" and bool((raw.dropna() % 1 == 0).all()):
        return raw.astype("Int64").astype(str).where(raw.notna(), None).astype(object)
    if raw.dtype.kind in "iu":
        return raw.astype(str).astype(object)
    return raw.astype(object).where(raw.notna(), None).map(lambda v: v if v is None else str(v).strip())


def _instruments(frame: pd.DataFrame, mapping: dict, kind: FileKind | None, names: PathNames) -> pd.DataFrame:
    """Exchange and unified symbol of each row: the path's (a known layout's, else the generic naming's),
    or each row's own symbol mapped by the layout (a grouped Tardis file)."""
    exchange = (kind.exchange if kind is not None else None) or names.exchange
    symbol = kind.symbol if kind is not None else names.symbol
    if kind is not None and kind.row_symbol is not None:
        if "symbol" not in mapping:
            raise LandingFileError(f"{kind.description}: a grouped file needs a symbol column")
        native = frame[mapping["symbol"]].astype(str)
        mapped = {value: kind.row_symbol(value) for value in pd.unique(native)}
        symbols = native.map(mapped)
    else:
        if symbol is None:
            raise LandingFileError(
                "no symbol for the rows: name the file after it (BTC_USDT-trades.feather) or use a known layout"
            )
        symbols = constant_text(symbol, frame.index)
    if exchange is None:
        raise LandingFileError(
            "no exchange for the rows: put the file under a folder named after the exchange (binance/...)"
        )
    return pd.DataFrame({"exchange": exchange, "symbol": symbols}, index=frame.index)


def canonical_records(
    raw: RawTable,
    dataset: str,
    kind: FileKind | None,
    names: PathNames,
    *,
    state: FileState,
    default_timezone: str | None = None,
) -> ParsedFile:
    """One batch of trades or funding rates, typed; unreadable rows in `rejected` with their reasons."""
    frame = _named(raw, kind)
    positional = len(raw.frame.columns) > 0 and not isinstance(raw.frame.columns[0], str)
    mapping, unused = _mapping(frame, dataset, kind)
    rejects: dict[Any, Reject] = {}
    time_column = _time_column(frame, mapping, kind)
    times = parse_times(
        frame[time_column], field_name=str(time_column), timezone=default_timezone, unit=state.time_unit
    )
    state.time_unit = state.time_unit or times.unit
    for label, (rule, message) in times.rejected.items():
        rejects.setdefault(label, Reject(rule, message))
    out = _instruments(frame, mapping, kind, names)
    out["time"] = times.times
    if dataset == TRADES:
        _trades(out, frame, mapping, rejects)
    else:
        _funding(out, frame, mapping, kind, rejects, default_timezone)
    warnings = [] if positional else list(raw.warnings)  # a candle reader's notes on positions
    if unused and state.batches == 0:
        warnings.append(f"fields not loaded: {', '.join(unused[:10])}")
    return _parsed(raw, dataset, out, frame, mapping, rejects, times.unit, warnings, state)


def _time_column(frame: pd.DataFrame, mapping: dict, kind: FileKind | None) -> Any:
    """The row's own time; a Tardis ticker's is its update time (`timestamp`), its funding time is kept
    apart (`_settled`)."""
    if not _is_tardis_ticker(kind):
        return mapping["time"]
    if "timestamp" not in frame.columns or "funding_timestamp" not in frame.columns:
        raise LandingFileError("a Tardis derivative_ticker file needs 'timestamp' and 'funding_timestamp'")
    mapping["time"] = "funding_timestamp"
    return "timestamp"


def _is_tardis_ticker(kind: FileKind | None) -> bool:
    return kind is not None and kind.data_type == "derivative_ticker"


def _number(
    out: pd.DataFrame, frame: pd.DataFrame, mapping: dict, name: str, rejects: dict, *, required: bool
) -> None:
    if name not in mapping:
        out[name] = np.nan
        return
    values, bad = numbers(frame[mapping[name]], name, required=required, integer=False)
    out[name] = values
    for label, why in bad.items():
        rejects.setdefault(label, why)


def _trades(out: pd.DataFrame, frame: pd.DataFrame, mapping: dict, rejects: dict) -> None:
    for name in ("price", "amount"):
        _number(out, frame, mapping, name, rejects, required=True)
    _number(out, frame, mapping, "cost", rejects, required=False)
    out["cost"] = out["cost"].where(out["cost"].notna(), out["price"] * out["amount"])
    maker = _booleans(frame[mapping["is_buyer_maker"]]) if "is_buyer_maker" in mapping else None
    out["is_buyer_maker"] = maker if maker is not None else None
    side = None
    if "side" in mapping:
        side = frame[mapping["side"]].astype(str).str.strip().str.lower().map(_SIDES)
    if maker is not None:
        from_maker = maker.map({True: "sell", False: "buy"})
        side = from_maker if side is None else side.where(side.notna(), from_maker)
    out["side"] = side.astype(object) if side is not None else None
    if "trade_id" in mapping:
        out["trade_id"] = _ids(frame[mapping["trade_id"]])
    else:  # no id (an export of prices and sizes): the time and row number identify the trade
        out["trade_id"] = [f"row-{label}" for label in frame.index]
    for label in out.index[out["trade_id"].isna()]:
        rejects.setdefault(label, Reject("missing_value", "trade id is missing"))


def _funding(
    out: pd.DataFrame,
    frame: pd.DataFrame,
    mapping: dict,
    kind: FileKind | None,
    rejects: dict,
    timezone: str | None,
) -> None:
    _number(out, frame, mapping, "rate", rejects, required=True)
    for name in ("mark_price", "index_price"):
        _number(out, frame, mapping, name, rejects, required=False)
    interval = kind.interval if kind is not None else None
    out["interval"] = interval
    if "interval_hours" in mapping:
        hours = pd.to_numeric(frame[mapping["interval_hours"]], errors="coerce")
        observed = hours.map(
            lambda h: f"{int(h)}h" if pd.notna(h) and float(h).is_integer() and h > 0 else None
        )
        out["interval"] = observed.where(observed.notna(), interval).astype(object)
    if _is_tardis_ticker(kind):
        _settled(out, frame, mapping, rejects, timezone)


def _settled(
    out: pd.DataFrame, frame: pd.DataFrame, mapping: dict, rejects: dict, timezone: str | None
) -> None:
    """Tardis ticker updates -> one row per funding time: the last update before it (its rate, mark and
    index price), stored at the funding time. Updates without a funding time are dropped as not funding."""
    funding = parse_times(frame[mapping["time"]], field_name=str(mapping["time"]), timezone=timezone)
    out["update_time"] = out["time"]
    out["time"] = funding.times
    for label in out.index[out["time"].isna() | out["update_time"].isna()]:
        rejects.setdefault(label, Reject("missing_value", "no funding time"))


def _parsed(
    raw: RawTable,
    dataset: str,
    out: pd.DataFrame,
    frame: pd.DataFrame,
    mapping: dict,
    rejects: dict,
    unit: str,
    warnings: list[str],
    state: FileState,
) -> ParsedFile:
    bad = out.index.isin(list(rejects))
    good = out.loc[~bad]
    if "update_time" in good.columns:  # Tardis: the last update of each funding time in the batch
        good = good.sort_values("update_time", kind="stable").drop_duplicates(["symbol", "time"], keep="last")
        good = good.drop(columns="update_time")
    columns = list(COLUMNS[dataset])
    if state.batches == 0 and len(frame) and good.empty:
        first = next(iter(rejects))
        raise LandingFileError(
            f"none of the first {len(frame)} rows could be read; first: row {first}: {rejects[first].message}"
        )
    rejected = _rejected(out, frame, mapping, bad, columns)
    labels = rejected.index
    where = f"{raw.location}: " if raw.location else ""
    state.batches += 1
    return ParsedFile(
        layout=raw.layout,
        time_unit=unit,
        frame=good[columns].sort_values("time", kind="stable") if len(good) else good[columns],
        rejected=rejected,
        rejected_rule=pd.Series([rejects[x].rule for x in labels], index=labels, dtype=object),
        rejected_message=pd.Series(
            [f"{where}row {x}: {rejects[x].message}" for x in labels], index=labels, dtype=object
        ),
        wrapper=raw.wrapper,
        exchange=_single(good["exchange"]),
        symbol=_single(good["symbol"]),
        warnings=warnings,
        format=raw.format,
        dataset=dataset,
    )


def _rejected(
    out: pd.DataFrame, frame: pd.DataFrame, mapping: dict, bad: np.ndarray, columns: list[str]
) -> pd.DataFrame:
    """Rejected rows under the dataset's names: typed values where they could be read, else as found
    (so correcting the bad value is enough to release the row)."""
    rejected = out.loc[bad, columns].astype(object)
    for name in columns:
        if name in mapping and name not in ("exchange", "symbol"):
            typed = rejected[name]
            rejected[name] = typed.where(typed.notna(), frame.loc[bad, mapping[name]].astype(object))
    return rejected


def _single(column: pd.Series) -> str | None:
    values = column.dropna().unique()
    return str(values[0]) if len(values) == 1 else None
