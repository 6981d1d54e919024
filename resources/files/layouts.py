"""Historical JSON files of candles: detect the layout, then read it into the canonical OHLCV frame.

Files come from exchange APIs (Binance klines, Kraken, Bybit, OKX, Polygon/Alpaca bars), from pandas
`to_json` in any orient, or from ad-hoc exports, plain or gzipped, one document or NDJSON. Nothing about the
layout is assumed from the file name: the content decides, and the layout found is reported so a surprising
result can be traced.

Layouts (`ParsedFile.layout`):
- `array-of-arrays`: `[[ts, o, h, l, c, v, ...], ...]` (ccxt order; extra fields ignored with a warning);
  `binance-klines`: Binance's 12-field klines (quote volume, trade count read too);
  `kraken-ohlc`: Kraken's 8-field rows (vwap at position 5) under a pair key;
  `array-of-arrays+header`: a first row of field names.
- `records` (= pandas orient 'records'), `split`, `columns`, `index`, `table` (pandas orients), and
  `single-record`.
- `ndjson-records` / `ndjson-arrays`: one JSON value per line; a broken line rejects that line only.
Wrappers such as `{"data": [...]}`, `{"result": {"list": [...]}}` or `{"results": [...], "ticker": ...}`
are unwrapped (reported in `wrapper`), and their symbol/exchange/interval/timezone fields are used.

Rows that cannot be read (a price that is not a number, a time of another unit than the file's) are
returned in `rejected` with a rule and a message naming the row, for quarantine; the file as a whole fails
(`LandingFileError`) only when its shape is not understood or no row at all can be read.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from resources.files import LandingFileError
from resources.files.naming import (
    PathNames,
    canonical_interval,
    names_from_path,
    normalize_symbol,
    resolve_interval,
)
from resources.files.timestamps import parse_times, validate_timezone

CANONICAL = (
    "exchange", "symbol", "interval", "time", "open", "high", "low", "close", "volume",
    "quote_volume", "trades_count", "vwap",
)  # fmt: skip
PRICES = ("open", "high", "low", "close", "volume")
OPTIONAL = ("quote_volume", "trades_count", "vwap")
_ROW_FIELDS = ("time", *PRICES, *OPTIONAL)
_META_FIELDS = ("exchange", "symbol", "interval", "timezone")

# Field names after folding (lower case, no '_', '-', ' '), most specific first. One-letter names are
# matched case-sensitively: in Binance's stream format 't' is the open time but 'T' the close time, 'v' the
# base volume but 'V' the taker-buy volume.
_ALIASES: dict[str, tuple[str, ...]] = {
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
_LOOKUP = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

# Positional layouts: array index -> canonical field.
_CCXT = {0: "time", 1: "open", 2: "high", 3: "low", 4: "close", 5: "volume"}
_BINANCE = {**_CCXT, 7: "quote_volume", 8: "trades_count"}
_KRAKEN = {0: "time", 1: "open", 2: "high", 3: "low", 4: "close", 5: "vwap", 6: "volume", 7: "trades_count"}

# Keys under which wrappers keep their rows, in order of preference.
_DATA_KEYS = (
    "data", "result", "results", "candles", "klines", "ohlcv", "ohlc", "bars", "list", "rows", "records",
    "values", "items",
)  # fmt: skip
_MAX_DEPTH = 6
_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_MAGIC = {b"PK\x03\x04": "a zip archive", b"BZh": "a bzip2 file", b"\xfd7zXZ": "an xz file"}


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
    compressed: bool = False
    exchange: str | None = None  # single value, or None when the file has several
    symbol: str | None = None
    interval: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows read from the file: good plus rejected."""
        return len(self.frame) + len(self.rejected)

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def description(self) -> str:
        """Layout as stored in the ledger, e.g. 'gzip:data:binance-klines'."""
        parts = (["gzip"] if self.compressed else []) + (([".".join(self.wrapper)]) if self.wrapper else [])
        return ":".join([*parts, self.layout])


@dataclass
class _RawTable:
    """Rows as found, before typing: columns are field names, or positions for array layouts."""

    layout: str
    frame: pd.DataFrame
    mapping: dict[str, Any]  # canonical field -> column of `frame`
    meta: dict[str, Any] = field(default_factory=dict)
    wrapper: tuple[str, ...] = ()
    symbol_hint: str | None = None
    rejected: list[tuple[int, str, str, Any]] = field(default_factory=list)  # (row, rule, message, raw)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# Bytes -> JSON
# --------------------------------------------------------------------------------------------------------


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when they start with gzip's magic number (whatever the name says)."""
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error) as exc:
        raise LandingFileError(f"corrupt gzip data: {exc}") from None


def _parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    # The standard library reads NaN / Infinity (Python's json.dumps writes them) and says where it broke.
    return json.loads(data.decode("utf-8"))


def _split_lines(data: bytes) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def load_document(data: bytes) -> tuple[str, Any]:
    """('json', value) or ('ndjson', [(line, value or exception)]); `LandingFileError` when not JSON."""
    for magic, what in _OTHER_MAGIC.items():
        if data.startswith(magic):
            raise LandingFileError(f"not JSON: the file is {what}")
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        return "json", None
    try:
        return "json", _parse_json(data)
    except UnicodeDecodeError as exc:
        raise LandingFileError(f"not UTF-8 text (byte {exc.start}): not a JSON file") from None
    except json.JSONDecodeError as exc:
        whole_error = exc
    lines = _split_lines(data)
    first_ok = False
    if len(lines) > 1:
        try:
            _parse_json(lines[0][1])
            first_ok = True
        except (json.JSONDecodeError, UnicodeDecodeError):
            first_ok = False
    if not first_ok:
        raise LandingFileError(
            f"invalid JSON at line {whole_error.lineno} column {whole_error.colno}: {whole_error.msg}"
        )
    try:  # fast path: every line is valid JSON orjson reads
        return "ndjson", [(number, orjson.loads(line)) for number, line in lines]
    except orjson.JSONDecodeError:
        pass
    values: list[tuple[int, Any]] = []
    for number, line in lines:
        try:
            values.append((number, _parse_json(line)))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            exc.line_text = line.decode("utf-8", errors="replace")  # kept for the quarantine message
            values.append((number, exc))
    return "ndjson", values


# --------------------------------------------------------------------------------------------------------
# Layout detection
# --------------------------------------------------------------------------------------------------------


def _fold(name: Any) -> str:
    text = str(name).strip()
    return text if len(text) == 1 else re.sub(r"[\s_\-]", "", text.lower())


def _field_of(name: Any) -> str | None:
    folded = _fold(name)
    found = _LOOKUP.get(folded)
    if found is None and len(folded) == 1:
        return None  # 'T', 'V', 'Q', ...: case matters for one-letter names
    return found


def map_fields(columns: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """Canonical field -> source column by alias priority; plus the names left unused."""
    by_alias: dict[str, Any] = {}
    for column in columns:
        by_alias.setdefault(_fold(column), column)
    mapping: dict[str, Any] = {}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_alias and by_alias[alias] not in mapping.values():
                mapping[name] = by_alias[alias]
                break
    unused = [str(c) for c in columns if c not in mapping.values()]
    return mapping, unused


def _ohlc_count(names) -> int:
    return sum(1 for n in names if _field_of(n) in {"open", "high", "low", "close"})


def _is_wrapper_meta(key: str, value: Any) -> bool:
    return (
        _field_of(key) in _META_FIELDS
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
    )


def detect(document: Any) -> _RawTable | None:
    """The raw table of a parsed JSON document; None when it holds no rows at all."""
    return _detect(document, meta={}, wrapper=(), depth=0, hint=None)


def _detect(
    value: Any, *, meta: dict, wrapper: tuple[str, ...], depth: int, hint: str | None
) -> _RawTable | None:
    if depth > _MAX_DEPTH:
        raise LandingFileError(f"no candle data found within {_MAX_DEPTH} levels of nesting")
    if value is None:
        return None
    if isinstance(value, list):
        table = _from_list(value, pair_keyed=hint is not None)
    elif isinstance(value, dict):
        return _from_dict(value, meta=meta, wrapper=wrapper, depth=depth, hint=hint)
    else:
        raise LandingFileError(f"the document is a single {type(value).__name__}, not candles")
    if table is not None:
        table.meta = {**meta, **table.meta}
        table.wrapper = wrapper
        table.symbol_hint = hint
    return table


def _from_dict(value: dict, *, meta: dict, wrapper: tuple[str, ...], depth: int, hint: str | None):
    if not value:
        return None
    keys = list(value)
    if isinstance(value.get("columns"), list) and isinstance(value.get("data"), list):
        table = _from_split(value)
    elif isinstance(value.get("schema"), dict) and isinstance(value.get("data"), list):
        table = _from_table_orient(value)
    elif all(isinstance(v, dict) for v in value.values()) and _ohlc_count(keys) >= 4:
        table = _from_frame(pd.DataFrame(value), "columns")
    elif (
        all(isinstance(v, dict) for v in value.values())
        and not any(k in _DATA_KEYS for k in keys)
        and _ohlc_count(next(iter(value.values()))) >= 4
    ):
        table = _from_frame(pd.DataFrame.from_dict(value, orient="index"), "index")
    elif _ohlc_count(keys) >= 4 and _field_of_any(keys, "time"):
        table = _from_records([value], layout="single-record", numbers=[1])
    else:
        return _unwrap(value, meta=meta, wrapper=wrapper, depth=depth, hint=hint)
    if table is not None:
        table.meta = {**meta, **table.meta}
        table.wrapper = wrapper
        table.symbol_hint = hint
    return table


def _field_of_any(keys, name: str) -> bool:
    return any(_field_of(k) == name for k in keys)


def _unwrap(value: dict, *, meta: dict, wrapper: tuple[str, ...], depth: int, hint: str | None):
    meta = {**meta}
    for key, item in value.items():
        if _is_wrapper_meta(key, item):
            meta.setdefault(_field_of(key), item)
    containers = {k: v for k, v in value.items() if isinstance(v, list | dict)}
    errors = {k: v for k, v in value.items() if str(k).lower() in {"error", "errors"} and v}
    for key in _DATA_KEYS:
        if key in containers and key not in errors:
            return _detect(containers[key], meta=meta, wrapper=(*wrapper, key), depth=depth + 1, hint=hint)
    candidates = {k: v for k, v in containers.items() if k not in errors and str(k).lower() != "error"}
    if len(candidates) == 1:
        ((key, inner),) = candidates.items()
        # A lone list under an unknown key is keyed by its instrument (Kraken: {"XXBTZUSD": [...], "last": n}).
        pair_hint = key if isinstance(inner, list) else hint
        return _detect(inner, meta=meta, wrapper=(*wrapper, key), depth=depth + 1, hint=pair_hint)
    scalars = {k: v for k, v in value.items() if not isinstance(v, list | dict)}
    if errors or not containers:
        detail = ", ".join(f"{k}={v!r}" for k, v in list({**scalars, **errors}.items())[:4])
        raise LandingFileError(
            f"no candle data in the object (keys {keys_text(value)}){': ' + detail if detail else ''}"
        )
    raise LandingFileError(
        f"no candle data found: the object's keys {keys_text(value)} match no known layout "
        f"(expected e.g. {{'data': [...]}} or pandas orients)"
    )


def keys_text(value: dict) -> str:
    keys = [str(k) for k in value]
    return "[" + ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "") + "]"


def _row_kind(rows: list, sample: int = 1_000) -> str:
    """'array', 'object' or 'other' by majority of the first rows; rows of another kind are rejected later."""
    kinds = Counter(
        "array" if isinstance(r, list) else "object" if isinstance(r, dict) else "other"
        for r in rows[:sample]
    )
    return kinds.most_common(1)[0][0]


def _from_list(rows: list, *, pair_keyed: bool) -> _RawTable | None:
    if not rows:
        return None
    kind = _row_kind(rows)
    numbers = list(range(1, len(rows) + 1))
    if kind == "array":
        return _from_arrays(rows, numbers, layout="array-of-arrays", pair_keyed=pair_keyed)
    if kind == "object":
        return _from_records(rows, layout="records", numbers=numbers)
    raise LandingFileError(f"the array holds {type(rows[0]).__name__} values, not candles (rows or objects)")


def _is_header(row: list) -> bool:
    return all(isinstance(v, str) for v in row) and _ohlc_count(row) >= 4


def _from_arrays(rows: list, numbers: list[int], *, layout: str, pair_keyed: bool = False) -> _RawTable:
    rejected: list[tuple[int, str, str, Any]] = []
    if rows and isinstance(rows[0], list) and _is_header(rows[0]):
        header = rows[0]
        good = []
        for number, row in zip(numbers[1:], rows[1:], strict=True):
            if isinstance(row, list) and len(row) == len(header):
                good.append(dict(zip(header, row, strict=True)))
            else:
                rejected.append(
                    (number, "row_shape", f"row {number}: expected {len(header)} fields like the header", row)
                )
        table = _from_records(
            good,
            layout=f"{layout}+header",
            numbers=[
                n
                for n, r in zip(numbers[1:], rows[1:], strict=True)
                if isinstance(r, list) and len(r) == len(header)
            ],
        )
        table.rejected[:0] = rejected
        return table
    widths = Counter(len(r) for r in rows if isinstance(r, list))
    width = widths.most_common(1)[0][0]
    if width < 6:
        raise LandingFileError(
            f"rows have {width} fields: at least 6 expected ([time, open, high, low, close, volume, ...])"
        )
    good_rows, good_numbers = [], []
    for number, row in zip(numbers, rows, strict=True):
        if not isinstance(row, list):
            rejected.append(
                (number, "row_shape", f"row {number} is a {type(row).__name__}, not an array", row)
            )
        elif len(row) != width:
            rejected.append(
                (number, "row_shape", f"row {number} has {len(row)} fields, the file's rows {width}", row)
            )
        else:
            good_rows.append(row)
            good_numbers.append(number)
    frame = pd.DataFrame(good_rows, index=pd.Index(good_numbers, name="row"))
    warnings: list[str] = []
    if width == 12 and _looks_like_binance(frame):
        name, mapping = "binance-klines", _BINANCE
    elif width == 8 and pair_keyed:
        name, mapping = "kraken-ohlc", _KRAKEN
    else:
        name, mapping = layout, _CCXT
        if width > 6:
            warnings.append(
                f"rows have {width} fields: read as [time, open, high, low, close, volume], "
                f"{width - 6} trailing field(s) ignored"
            )
    return _RawTable(
        layout=name,
        frame=frame,
        mapping={v: k for k, v in mapping.items()},
        rejected=rejected,
        warnings=warnings,
    )


def _looks_like_binance(frame: pd.DataFrame) -> bool:
    """Binance klines: field 6 is the close time (open time + interval - 1 ms), field 8 a trade count."""
    opens = pd.to_numeric(frame[0], errors="coerce")
    closes = pd.to_numeric(frame[6], errors="coerce")
    trades = pd.to_numeric(frame[8], errors="coerce")
    span = (closes - opens).dropna()
    return bool(len(span)) and bool((span > 0).all()) and bool((trades.dropna() % 1 == 0).all())


def _from_records(rows: list, *, layout: str, numbers: list[int]) -> _RawTable:
    rejected = []
    good, good_numbers = [], []
    for number, row in zip(numbers, rows, strict=True):
        if isinstance(row, dict):
            good.append(row)
            good_numbers.append(number)
        else:
            rejected.append(
                (number, "row_shape", f"row {number} is a {type(row).__name__}, not an object", row)
            )
    frame = pd.DataFrame(good, index=pd.Index(good_numbers, name="row"))
    mapping, unused = map_fields(list(frame.columns))
    table = _RawTable(layout=layout, frame=frame, mapping=mapping, rejected=rejected)
    _note_unused(table, unused)
    return table


def _note_unused(table: _RawTable, unused: list[str]) -> None:
    if unused:
        shown = ", ".join(unused[:10]) + (", ..." if len(unused) > 10 else "")
        table.warnings.append(f"fields not loaded: {shown}")


def _from_split(value: dict) -> _RawTable:
    columns = value["columns"]
    index = value.get("index")
    rows, numbers, rejected = [], [], []
    for number, row in enumerate(value["data"], start=1):
        if isinstance(row, list) and len(row) == len(columns):
            rows.append(row)
            numbers.append(number)
        else:
            rejected.append((number, "row_shape", f"row {number}: expected {len(columns)} values", row))
    frame = pd.DataFrame(rows, columns=columns, index=pd.Index(numbers, name="row"))
    if isinstance(index, list) and len(index) == len(value["data"]):
        frame["__index__"] = [index[n - 1] for n in numbers]
    table = _frame_table(frame, "split")
    table.rejected = rejected
    return table


def _from_table_orient(value: dict) -> _RawTable:
    table = _from_records(value["data"], layout="table", numbers=list(range(1, len(value["data"]) + 1)))
    if "time" not in table.mapping:
        fields = value["schema"].get("fields") or []
        times = [
            f.get("name") for f in fields if isinstance(f, dict) and str(f.get("type")).startswith("datetime")
        ]
        if len(times) == 1 and times[0] in table.frame.columns:
            table.mapping["time"] = times[0]
            table.warnings = [w for w in table.warnings if not w.startswith("fields not loaded")]
            _note_unused(table, [str(c) for c in table.frame.columns if c not in table.mapping.values()])
    return table


def _from_frame(frame: pd.DataFrame, layout: str) -> _RawTable:
    """pandas 'columns' / 'index' orients: the frame's index holds the times unless a column does."""
    frame = frame.copy()
    frame["__index__"] = list(frame.index)
    frame.index = pd.Index(range(1, len(frame) + 1), name="row")
    return _frame_table(frame, layout)


def _frame_table(frame: pd.DataFrame, layout: str) -> _RawTable:
    columns = [c for c in frame.columns if c != "__index__"]
    mapping, unused = map_fields(columns)
    if "time" not in mapping and "__index__" in frame.columns:
        index = frame["__index__"]
        numeric = pd.to_numeric(index, errors="coerce")
        if numeric.notna().all() and (numeric.to_numpy() == np.arange(len(index))).all():
            raise LandingFileError(
                f"pandas '{layout}' layout without times: no time field and the index is 0..{len(index) - 1}"
            )
        mapping["time"] = "__index__"
    table = _RawTable(layout=layout, frame=frame, mapping=mapping)
    _note_unused(table, unused)
    return table


def _from_ndjson(values: list[tuple[int, Any]]) -> _RawTable | None:
    broken, numbers, rows = [], [], []
    for number, value in values:
        if isinstance(value, Exception):
            broken.append((number, value))
        else:
            numbers.append(number)
            rows.append(value)
    if not rows:
        raise LandingFileError("no line of the NDJSON file is valid JSON")
    kind = _row_kind(rows)
    if kind == "array":
        table = _from_arrays(rows, numbers, layout="ndjson-arrays")
    elif kind == "object":
        table = _from_records(rows, layout="ndjson-records", numbers=numbers)
    else:
        raise LandingFileError("NDJSON lines hold neither arrays nor objects")
    for number, exc in broken:
        message = f"line {number}: invalid JSON ({getattr(exc, 'msg', exc)})"
        table.rejected.append((number, "invalid_json", message, getattr(exc, "line_text", None)))
    return table


# --------------------------------------------------------------------------------------------------------
# Raw table -> canonical frame
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Reject:
    rule: str
    message: str


def _numbers(raw: pd.Series, name: str, required: bool, integer: bool) -> tuple[pd.Series, dict]:
    """Column as floats, with the rows whose value is missing (if required) or not a finite number."""
    if raw.dtype.kind == "b":
        raise LandingFileError(f"field {name!r} holds booleans where numbers are expected")
    is_bool = raw.map(lambda v: isinstance(v, bool | np.bool_)) if raw.dtype == object else None
    values = pd.to_numeric(raw.where(~is_bool) if is_bool is not None else raw, errors="coerce").astype(
        "float64"
    )
    present = raw.notna()
    finite = np.isfinite(values.fillna(np.nan).to_numpy())
    bad: dict = {}
    not_number = present & ~pd.Series(finite, index=raw.index)
    for label in raw.index[not_number]:
        bad[label] = _Reject("non_numeric", f"{name}={_show(raw[label])} is not a finite number")
    if integer:
        fractional = present & pd.Series(finite, index=raw.index) & (values % 1 != 0)
        for label in raw.index[fractional]:
            bad[label] = _Reject("non_integer", f"{name}={_show(raw[label])} is not a whole number")
    if required:
        for label in raw.index[~present]:
            bad[label] = _Reject("missing_value", f"{name} is missing")
    return values, bad


def _show(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _normalized(raw: pd.Series, fn) -> tuple[pd.Series, dict]:
    """Apply a normalizer to the distinct values only (columns of symbols repeat a few values)."""
    out = pd.Series(None, index=raw.index, dtype=object)
    bad: dict = {}
    present = raw.notna()
    if not present.any():
        return out, bad
    cache: dict = {}
    for value in pd.unique(raw[present]):
        try:
            cache[value] = fn(value)
        except LandingFileError as exc:
            cache[value] = exc
    mapped = raw[present].map(cache)
    for label, result in mapped.items():
        if isinstance(result, LandingFileError):
            bad[label] = _Reject("invalid_value", str(result))
        else:
            out[label] = result
    return out, bad


def _resolve_meta(
    name: str, rows: pd.Series | None, wrapper: Any, path: str | None, hint: str | None, fn
) -> tuple[pd.Series | None, str | None, str, dict]:
    """Per-row values of exchange/symbol/interval, the fallback for rows without one, and its origin.

    The file's own values (row fields, then wrapper fields) win over the path; when both exist they must
    agree, else the file is refused: a mismatch means one of the two is wrong and we cannot tell which.
    """
    bad: dict = {}
    per_row = None
    if rows is not None:
        per_row, bad = _normalized(rows, fn)
    file_value = fn(wrapper) if wrapper is not None else None
    if path is not None:
        in_file = set(per_row.dropna().unique()) if per_row is not None else set()
        if file_value is not None:
            in_file.add(file_value)
        disagreeing = sorted(v for v in in_file if v != path)
        if disagreeing:
            raise LandingFileError(
                f"{name} in the file ({', '.join(map(repr, disagreeing[:3]))}) disagrees with the path ({path!r})"
            )
    if file_value is not None:
        return per_row, file_value, f"the file's {name!r} field", bad
    if path is not None:
        return per_row, path, "the path", bad
    if hint is not None:
        return per_row, fn(hint), f"the key {hint!r}", bad
    return per_row, None, f"the file's {name!r} field", bad


def _exchange(value: Any) -> str:
    text = str(value).strip().lower()
    if not text:
        raise LandingFileError("empty exchange name")
    return text


def _symbol(value: Any) -> str:
    if not str(value).strip():
        raise LandingFileError("empty symbol")
    return normalize_symbol(str(value))


def canonicalize(raw: _RawTable, names: PathNames, *, default_timezone: str | None = None) -> ParsedFile:
    """Type the raw rows into canonical candles; unreadable rows go to `rejected` with their reason."""
    frame, mapping = raw.frame, raw.mapping
    missing = [f for f in ("time", *PRICES) if f not in mapping]
    if missing:
        found = ", ".join(str(c) for c in frame.columns if c != "__index__") or "none"
        raise LandingFileError(f"no {', '.join(missing)} field(s) in the {raw.layout} rows (fields: {found})")
    warnings = list(raw.warnings)
    timezone = raw.meta.get("timezone") or default_timezone
    if timezone is not None:
        timezone = validate_timezone(str(timezone))

    rejects: dict = {}

    def reject(found: dict) -> None:
        for label, why in found.items():
            rejects.setdefault(label, why)

    time_name = (
        mapping["time"] if isinstance(mapping["time"], str) and mapping["time"] != "__index__" else "time"
    )
    times = parse_times(frame[mapping["time"]], field_name=time_name, timezone=timezone)
    reject({label: _Reject(rule, message) for label, (rule, message) in times.rejected.items()})
    reject(
        {
            label: _Reject("missing_value", "time is missing")
            for label in frame.index[frame[mapping["time"]].isna()]
        }
    )
    out = pd.DataFrame(index=frame.index)
    out["time"] = times.times
    for name in (*PRICES, *OPTIONAL):
        if name in mapping:
            values, bad = _numbers(
                frame[mapping[name]], name, required=name in PRICES, integer=name == "trades_count"
            )
            out[name] = values
            reject(bad)
        else:
            out[name] = np.nan

    meta_columns = {}
    for name, fn in (("exchange", _exchange), ("symbol", _symbol), ("interval", canonical_interval)):
        rows = frame[mapping[name]] if name in mapping else None
        wrapper = raw.meta.get(name)
        path_value = getattr(names, name)
        hint = raw.symbol_hint if name == "symbol" else None
        per_row, fallback, origin, bad = _resolve_meta(name, rows, wrapper, path_value, hint, fn)
        reject(bad)
        column = per_row if per_row is not None else pd.Series(None, index=frame.index, dtype=object)
        column = column.where(column.notna(), fallback)
        meta_columns[name] = (column, origin)

    good_labels = frame.index.difference(pd.Index(list(rejects)), sort=False)
    for name, advice in (
        ("exchange", "put the file under a folder named after the exchange (binance/BTC_USDT-1m.json), "
         "name a folder exchange=<name>, or add an 'exchange' field"),
        ("symbol", "name the file after it (BTC_USDT-1m.json) or add a 'symbol' field"),
    ):  # fmt: skip
        column = meta_columns[name][0]
        if column[good_labels].isna().any():
            extra = f" ({'; '.join(names.warnings)})" if name == "symbol" and names.warnings else ""
            raise LandingFileError(f"no {name} for the candles{extra}: {advice}")

    out["exchange"] = meta_columns["exchange"][0]
    out["symbol"] = meta_columns["symbol"][0]
    declared, interval_origin = meta_columns["interval"]
    out["interval"] = declared
    if len(good_labels) == 0 and len(frame):
        first = min(rejects)
        raise LandingFileError(
            f"none of the {len(frame)} rows could be read; first: row {first}: {rejects[first].message}"
        )
    # Spacing is measured on every row with a readable time: a bad price does not make a gap.
    timed = out[out["time"].notna() & out["exchange"].notna() & out["symbol"].notna()]
    intervals = pd.Series(None, index=timed.index, dtype=object)
    series = timed.groupby(["exchange", "symbol", timed["interval"].fillna("")], sort=True, dropna=False)
    for (exchange, symbol, declared_value), group in series:
        interval, note = resolve_interval(
            group["time"], declared_value or None, origin=interval_origin, series=f"{exchange} {symbol}"
        )
        intervals[group.index] = interval
        if note:
            warnings.append(note)
    good = out.loc[good_labels].assign(interval=intervals.reindex(good_labels))
    good["trades_count"] = good["trades_count"].astype("Int64")
    good = good[list(CANONICAL)]

    rejected_labels = [label for label in frame.index if label in rejects]
    rejected = _rejected_rows(frame, mapping, rejected_labels, meta_columns, times.times, intervals)
    rejected_rule = pd.Series({label: rejects[label].rule for label in rejected_labels}, dtype=object)
    rejected_message = pd.Series(
        {label: f"row {label}: {rejects[label].message}" for label in rejected_labels}, dtype=object
    )
    if raw.rejected:
        # Rows refused before typing (a broken NDJSON line, a row of the wrong shape): the message keeps
        # the raw text, the row the series it belongs to, so an operator can correct and release it.
        numbers = pd.Index([n for n, *_ in raw.rejected], name="row")
        shaped = pd.DataFrame(
            {name: [None] * len(numbers) for name in CANONICAL}, index=numbers, dtype=object
        )
        for name in ("exchange", "symbol", "interval"):
            shaped[name] = _single(good[name]) if len(good) else None
        rejected = pd.concat([rejected, shaped])
        rejected_rule = pd.concat(
            [rejected_rule, pd.Series([r for _, r, _, _ in raw.rejected], index=numbers)]
        )
        messages = [f"{m}: {_raw_text(v)}" if v is not None else m for _, _, m, v in raw.rejected]
        rejected_message = pd.concat([rejected_message, pd.Series(messages, index=numbers, dtype=object)])
    return ParsedFile(
        layout=raw.layout,
        time_unit=times.unit,
        frame=good.sort_values(["exchange", "symbol", "interval", "time"], kind="stable"),
        rejected=rejected,
        rejected_rule=rejected_rule.astype(object),
        rejected_message=rejected_message,
        wrapper=raw.wrapper,
        exchange=_single(good["exchange"]),
        symbol=_single(good["symbol"]),
        interval=_single(good["interval"]),
        warnings=warnings,
    )


def _single(column: pd.Series) -> str | None:
    values = column.dropna().unique()
    return str(values[0]) if len(values) == 1 else None


def _raw_text(value: Any, limit: int = 2_000) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rejected_rows(
    frame, mapping, labels, meta_columns, times: pd.Series, intervals: pd.Series
) -> pd.DataFrame:
    """Rejected rows under canonical names, for quarantine: values as read, except a time that was read
    correctly is given as UTC (so correcting a bad price is enough to release the row)."""
    out = pd.DataFrame(index=pd.Index(labels, name="row"))
    for name in CANONICAL:
        if name in ("exchange", "symbol"):
            out[name] = meta_columns[name][0].reindex(labels).astype(object)
        elif name == "interval":
            declared = meta_columns[name][0].reindex(labels).astype(object)
            found = intervals.reindex(labels).astype(object)
            out[name] = found.where(found.notna(), declared)
        elif name == "time":
            raw = frame.loc[labels, mapping["time"]].astype(object)
            parsed = times.reindex(labels)
            out[name] = parsed.astype(object).where(parsed.notna(), raw)
        elif name in mapping:
            out[name] = frame.loc[labels, mapping[name]].astype(object)
        else:
            out[name] = None
    return out


# --------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _collector_paused():
    """Decoding allocates millions of lists and dicts, none in a cycle: the cyclic GC's passes over them
    (triggered by the allocation count) are pure cost, about half of the decoding time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_file(
    path: Path, *, relative_to: Path | None = None, default_timezone: str | None = None
) -> ParsedFile:
    """Read one landed file; names missing from its content come from its path relative to `relative_to`."""
    data, compressed = read_bytes(path)
    relative = path.relative_to(relative_to).as_posix() if relative_to is not None else path.name
    names = names_from_path(relative)
    with _collector_paused():
        kind, document = load_document(data)
        raw = _from_ndjson(document) if kind == "ndjson" else detect(document)
        del document
    if raw is None or (raw.frame.empty and not raw.rejected):
        return _empty(kind, compressed)
    parsed = canonicalize(raw, names, default_timezone=default_timezone)
    parsed.compressed = compressed
    return parsed


def _empty(kind: str, compressed: bool) -> ParsedFile:
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in CANONICAL})
    return ParsedFile(
        layout="empty" if kind == "json" else "ndjson-empty",
        time_unit=None,
        frame=frame,
        rejected=frame.copy(),
        rejected_rule=pd.Series(dtype=object),
        rejected_message=pd.Series(dtype=object),
        compressed=compressed,
    )
