"""A reader's raw table -> canonical candles: the steps every reader shares, each a small function.

1. the table must map time, open, high, low, close and volume;
2. times are parsed (`resources.files.timestamps`: epoch unit per file, ISO with zones) and numbers typed
   (`resources.files.values`), each unreadable value rejecting its row with a rule and a message;
3. exchange, symbol and interval come from the rows, a wrapper, the path or a key, and must agree;
4. the interval of each series is checked against (or inferred from) the spacing of its candles;
5. the readable rows become the canonical frame, the others `rejected` with their values as read.

A file fails as a whole (`LandingFileError`) only for problems of the whole file: a missing field, a
disagreement about its names, an interval the data contradicts, or no readable row at all.

A file read in batches is canonicalized batch by batch with one `FileState`: its first batch decides the
epoch unit and the interval of each series, which its later batches must then keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.fields import (
    CANONICAL,
    INDEX_COLUMN,
    OPTIONAL,
    PRICES,
    looks_like_trades,
)
from market_warehouse.resources.files.naming import PathNames, resolve_interval
from market_warehouse.resources.files.readers.base import RawTable
from market_warehouse.resources.files.timestamps import ParsedTimes, parse_times, validate_timezone
from market_warehouse.resources.files.values import (
    MetaColumn,
    Reject,
    Rejects,
    constant_text,
    numbers,
    resolve_meta,
)

_SERIES = ("exchange", "symbol", "interval", "time")
_NAME_ADVICE = {
    "exchange": "put the file under a folder named after the exchange (binance/BTC_USDT-1m.json), "
    "name a folder exchange=<name>, or add an 'exchange' field",
    "symbol": "name the file after it (BTC_USDT-1m.json) or add a 'symbol' field",
}


@dataclass
class ParsedFile:
    """A file read into canonical candles, with what was found out about it on the way."""

    layout: str
    time_unit: str | None
    frame: pd.DataFrame  # canonical columns, typed; index = row number in the file (line for NDJSON)
    rejected: pd.DataFrame  # canonical columns with the raw values as read; same indexing
    rejected_rule: pd.Series
    rejected_message: pd.Series
    wrapper: tuple[str, ...] = ()
    container: str | None = None  # 'gzip' or 'zip' around the content
    exchange: str | None = None  # single value, or None when the file has several
    symbol: str | None = None
    interval: str | None = None
    warnings: list[str] = field(default_factory=list)
    format: str = "json"
    dataset: str = "ohlcv"  # the warehouse table the rows go to: ohlcv, market_trades, funding_rates
    price: str | None = None  # the candles' price kind when a known layout tells it (mark, index, ...)
    archive: str | None = None  # the known layout the path follows, e.g. 'binance-vision:aggTrades'

    @property
    def compressed(self) -> bool:
        return self.container is not None

    @property
    def rows(self) -> int:
        """Rows read from the file: good plus rejected."""
        return len(self.frame) + len(self.rejected)

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def description(self) -> str:
        """Layout as stored in the ledger: container, format (JSON unnamed), wrapper, layout, e.g.
        'gzip:data:binance-klines', 'zip:csv:binance-klines', 'parquet'."""
        parts = [self.container] if self.container else []
        parts += [self.format] if self.format != "json" else []
        parts += [".".join(self.wrapper)] if self.wrapper else []
        parts += [self.layout] if self.layout != self.format else []
        return ":".join(parts)


def empty_file(
    layout: str,
    *,
    format: str = "json",
    container: str | None = None,
    dataset: str = "ohlcv",
    columns: tuple[str, ...] = CANONICAL,
) -> ParsedFile:
    """A file without rows: loaded as 'empty', not an error (`columns` of its dataset's rows)."""
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    return ParsedFile(
        layout=layout,
        time_unit=None,
        frame=frame,
        rejected=frame.copy(),
        rejected_rule=pd.Series(dtype=object),
        rejected_message=pd.Series(dtype=object),
        container=container,
        format=format,
        dataset=dataset,
    )


@dataclass
class FileState:
    """What a file's first batch decided, kept for its later batches: one epoch unit, one interval per
    series. A file read whole is one batch with a fresh state."""

    time_unit: str | None = None
    intervals: dict[tuple[str, str, str], str] = field(default_factory=dict)
    batches: int = 0


class _RejectSet(dict):
    """Row label -> the first reason found to refuse it (a row is quarantined once, for one rule)."""

    def add(self, found: Rejects) -> None:
        for label, why in found.items():
            self.setdefault(label, why)


def canonicalize(
    raw: RawTable,
    names: PathNames,
    *,
    default_timezone: str | None = None,
    state: FileState | None = None,
    last: bool = True,
) -> ParsedFile:
    """Type the raw rows into canonical candles; unreadable rows go to `rejected` with their reason.

    `state` carries a batched file's decisions from batch to batch; `last` says this is its last batch.
    """
    state = state or FileState()
    _require_fields(raw)
    warnings = list(raw.warnings)
    rejects = _RejectSet()
    times = _parse_time_column(raw, _timezone(raw, default_timezone), rejects, state)
    out = _typed_values(raw, times, rejects)
    meta = _meta_columns(raw, names, rejects)
    good_labels = raw.frame.index.difference(pd.Index(list(rejects)), sort=False)
    _require_names(meta, good_labels, names)
    for name in ("exchange", "symbol", "interval"):
        out[name] = meta[name].values
    if state.batches == 0:
        _require_some_readable(raw, good_labels, rejects, whole=last)
    one_series = all(meta[name].uniform for name in ("exchange", "symbol", "interval"))
    intervals = _series_intervals(out, meta["interval"].origin, warnings, state, one_series=one_series)
    good = _good_rows(out, good_labels, intervals)
    rejected, rule, message = _rejected_part(raw, rejects, meta, times.times, intervals, good)
    state.batches += 1
    return ParsedFile(
        layout=raw.layout,
        time_unit=times.unit,
        frame=_sorted(good, one_series=one_series),
        rejected=rejected,
        rejected_rule=rule.astype(object),
        rejected_message=message,
        wrapper=raw.wrapper,
        exchange=_file_value(good, "exchange", meta),
        symbol=_file_value(good, "symbol", meta),
        interval=single_value(good["interval"]),
        warnings=warnings,
        format=raw.format,
    )


def _require_fields(raw: RawTable) -> None:
    missing = [f for f in ("time", *PRICES) if f not in raw.mapping]
    if not missing:
        return
    columns = [c for c in raw.frame.columns if c != INDEX_COLUMN]
    found = ", ".join(str(c) for c in columns) or "none"
    if looks_like_trades(columns):
        raise LandingFileError(
            f"the {raw.layout} rows are trades, not candles (fields: {found}): only candle files are loaded"
        )
    raise LandingFileError(f"no {', '.join(missing)} field(s) in the {raw.layout} rows (fields: {found})")


def _where(raw: RawTable, label: Any) -> str:
    """A row as named in messages: 'row 5', or 'member.csv: row 5' for a member of a zip archive."""
    return f"{raw.location}: row {label}" if raw.location else f"row {label}"


def _timezone(raw: RawTable, default_timezone: str | None) -> str | None:
    """The zone of naive ISO times: the file's own 'timezone' field, else the folder's default."""
    timezone = raw.meta.get("timezone") or default_timezone
    return validate_timezone(str(timezone)) if timezone is not None else None


def _parse_time_column(
    raw: RawTable, timezone: str | None, rejects: _RejectSet, state: FileState
) -> ParsedTimes:
    column = raw.mapping["time"]
    name = column if isinstance(column, str) and column != INDEX_COLUMN else "time"
    values = raw.frame[column]
    times = parse_times(values, field_name=name, timezone=timezone, unit=state.time_unit)
    state.time_unit = state.time_unit or times.unit
    rejects.add({label: Reject(rule, message) for label, (rule, message) in times.rejected.items()})
    rejects.add({label: Reject("missing_value", "time is missing") for label in values.index[values.isna()]})
    return times


def _typed_values(raw: RawTable, times: ParsedTimes, rejects: _RejectSet) -> pd.DataFrame:
    """Times and numbers under canonical names (NaN where a value is refused or absent)."""
    out = pd.DataFrame(index=raw.frame.index)
    out["time"] = times.times
    for name in (*PRICES, *OPTIONAL):
        if name not in raw.mapping:
            out[name] = np.nan
            continue
        values, bad = numbers(
            raw.frame[raw.mapping[name]], name, required=name in PRICES, integer=name == "trades_count"
        )
        out[name] = values
        rejects.add(bad)
    return out


def _meta_columns(raw: RawTable, names: PathNames, rejects: _RejectSet) -> dict[str, MetaColumn]:
    meta = {}
    for name in ("exchange", "symbol", "interval"):
        rows = raw.frame[raw.mapping[name]] if name in raw.mapping else None
        hint = raw.symbol_hint if name == "symbol" else None
        meta[name], bad = resolve_meta(
            name, rows, raw.meta.get(name), getattr(names, name), hint, raw.frame.index
        )
        rejects.add(bad)
    return meta


def _require_names(meta: dict[str, MetaColumn], good_labels: pd.Index, names: PathNames) -> None:
    """Every readable row needs an exchange and a symbol: they are part of the candle's key."""
    for name, advice in _NAME_ADVICE.items():
        column = meta[name]
        missing = column.fallback is None if column.uniform else column.values[good_labels].isna().any()
        if missing:
            extra = f" ({'; '.join(names.warnings)})" if name == "symbol" and names.warnings else ""
            raise LandingFileError(f"no {name} for the candles{extra}: {advice}")


def _require_some_readable(raw: RawTable, good_labels: pd.Index, rejects: _RejectSet, *, whole: bool) -> None:
    """A file (or the first batch of one) of which no row can be read is misread, not full of bad rows."""
    if len(good_labels) == 0 and len(raw.frame):
        first = min(rejects)
        rows = f"the {len(raw.frame)}" if whole else f"the first {len(raw.frame)}"
        raise LandingFileError(
            f"none of {rows} rows could be read; first: {_where(raw, first)}: {rejects[first].message}"
        )


def _sorted(good: pd.DataFrame, *, one_series: bool) -> pd.DataFrame:
    """Candles in key order; one series already in time order (the usual file) is left as it is."""
    if one_series:
        return good if good["time"].is_monotonic_increasing else good.sort_values("time", kind="stable")
    return good.sort_values(list(_SERIES), kind="stable")


def _series(timed: pd.DataFrame, *, one_series: bool) -> Iterator[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(exchange, symbol, declared interval or '') -> its rows; one series without grouping."""
    if one_series:
        if len(timed):
            declared = timed["interval"].iloc[0]  # by column: a row of mixed dtypes may turn None into NaN
            declared = declared if isinstance(declared, str) else ""
            yield (timed["exchange"].iloc[0], timed["symbol"].iloc[0], declared), timed
        return
    yield from timed.groupby(["exchange", "symbol", timed["interval"].fillna("")], sort=True, dropna=False)


def _series_intervals(
    out: pd.DataFrame, origin: str, warnings: list[str], state: FileState, *, one_series: bool
) -> pd.Series:
    """The interval of each row's series, checked against (or inferred from) its spacing; a series seen in
    an earlier batch keeps the interval found there.

    Spacing is measured on every row with a readable time: a bad price does not make a gap.
    """
    if one_series:
        timed = out[out["time"].notna()]
    else:
        timed = out[out["time"].notna() & out["exchange"].notna() & out["symbol"].notna()]
    intervals = pd.Series(None, index=timed.index, dtype=object)
    found = []
    for key, group in _series(timed, one_series=one_series):
        exchange, symbol, declared = key
        known = state.intervals.get(key)
        interval, note = resolve_interval(
            group["time"],
            declared or known,
            origin=origin if declared or known is None else "found in the file's first rows",
            series=f"{exchange} {symbol}",
        )
        state.intervals[key] = interval
        found.append(interval)
        if not one_series:
            intervals[group.index] = interval
        if note and known is None:
            warnings.append(note)
    return constant_text(found[0], timed.index) if one_series and found else intervals


def _good_rows(out: pd.DataFrame, good_labels: pd.Index, intervals: pd.Series) -> pd.DataFrame:
    every = len(good_labels) == len(out)  # no row rejected: no row to pick
    good = out if every else out.loc[good_labels]
    good = good.assign(
        interval=intervals if intervals.index.equals(good.index) else intervals.reindex(good_labels)
    )
    good["trades_count"] = good["trades_count"].astype("Int64")
    return good[list(CANONICAL)]


def _rejected_part(
    raw: RawTable,
    rejects: _RejectSet,
    meta: dict[str, MetaColumn],
    times: pd.Series,
    intervals: pd.Series,
    good: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Rejected rows (typed-value rejects, then rows refused before typing), their rules and messages."""
    index = raw.frame.index
    labels = list(index[index.isin(list(rejects))]) if rejects else []
    rejected = _rejected_rows(raw, labels, meta, times, intervals)
    rule = pd.Series({label: rejects[label].rule for label in labels}, dtype=object)
    message = pd.Series(
        {label: f"{_where(raw, label)}: {rejects[label].message}" for label in labels}, dtype=object
    )
    if not raw.rejected:
        return rejected, rule, message
    shaped, shaped_rule, shaped_message = _shape_rejects(raw, good)
    return (
        pd.concat([rejected, shaped]),
        pd.concat([rule, shaped_rule]),
        pd.concat([message, shaped_message]),
    )


def _shape_rejects(raw: RawTable, good: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Rows refused before typing (a broken NDJSON line, a row of the wrong shape): the message keeps the
    raw text, the row the series it belongs to, so an operator can correct and release it."""
    numbers_ = pd.Index([n for n, *_ in raw.rejected], name="row")
    shaped = pd.DataFrame({name: [None] * len(numbers_) for name in CANONICAL}, index=numbers_, dtype=object)
    for name in ("exchange", "symbol", "interval"):
        shaped[name] = single_value(good[name]) if len(good) else None
    rules = pd.Series([r for _, r, _, _ in raw.rejected], index=numbers_)
    where = f"{raw.location}: " if raw.location else ""
    messages = [
        f"{where}{m}: {_raw_text(v)}" if v is not None else f"{where}{m}" for _, _, m, v in raw.rejected
    ]
    return shaped, rules, pd.Series(messages, index=numbers_, dtype=object)


def _file_value(good: pd.DataFrame, name: str, meta: dict[str, MetaColumn]) -> str | None:
    """The file's one exchange/symbol/interval; known without a scan when no row has its own."""
    column = meta[name]
    if column.uniform:
        return column.fallback if len(good) else None
    return single_value(good[name])


def single_value(column: pd.Series) -> str | None:
    """The one value of a column (exchange, symbol, interval), None when it has several or none."""
    values = column.dropna().unique()
    return str(values[0]) if len(values) == 1 else None


def _raw_text(value: Any, limit: int = 2_000) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rejected_rows(
    raw: RawTable, labels: list, meta: dict[str, MetaColumn], times: pd.Series, intervals: pd.Series
) -> pd.DataFrame:
    """Rejected rows under canonical names, for quarantine: values as read, except a time that was read
    correctly is given as UTC (so correcting a bad price is enough to release the row)."""
    if not labels:
        return pd.DataFrame(
            {name: pd.Series(dtype=object) for name in CANONICAL}, index=pd.Index([], name="row")
        )
    frame, mapping = raw.frame, raw.mapping
    out = pd.DataFrame(index=pd.Index(labels, name="row"))
    for name in CANONICAL:
        if name in ("exchange", "symbol"):
            out[name] = meta[name].values.reindex(labels).astype(object)
        elif name == "interval":
            declared = meta[name].values.reindex(labels).astype(object)
            found = intervals.reindex(labels).astype(object)
            out[name] = found.where(found.notna(), declared)
        elif name == "time":
            values = frame.loc[labels, mapping["time"]].astype(object)
            parsed = times.reindex(labels)
            out[name] = parsed.astype(object).where(parsed.notna(), values)
        elif name in mapping:
            out[name] = frame.loc[labels, mapping[name]].astype(object)
        else:
            out[name] = None
    return out
