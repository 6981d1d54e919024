"""Warehouse column types in pandas and Arrow: the one mapping and the one conversion of frame columns.

A column's *kind* (`kind_of`) decides everything else: the pandas dtype a frame must have to be written
(`to_storage`), the Arrow type of the binary COPY (`arrow_type`), and how raw source values are parsed
(`parse`). Two callers, one engine:

* the row-level split (`resources.quality.split`) parses what sources send — strings of numbers and ISO
  timestamps, numbers in text columns — marks the rows that cannot be typed (they are quarantined), and
  types the rest for storage right away;
* the upsert (`resources.warehouse.upsert`) takes frames from any caller and refuses values of the wrong
  type. A column that already has its storage dtype (every column `load_frame` passes on, since the split
  typed it) is returned as it is: a loaded row is converted once, not once per layer.

Storage dtypes: timestamps tz-aware UTC in microseconds (PostgreSQL's resolution), float64 / float32,
nullable Int64 / Int32 / Int16, nullable boolean, strings, `Decimal` rounded to the column's scale, and JSON
as text. `numeric` and `jsonb` are Python objects whatever the input, so they are converted at the write,
once; the split leaves them (and `real`, kept float64 so that values shown in messages and audit rows stay
the ones sent) as parsed.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, JSONB

# Kinds the upsert can write; `date` is parsed by the split only.
STORAGE_KINDS = ("timestamp", "float8", "float4", "int8", "int4", "int2", "numeric", "bool", "text", "jsonb")


# SQLAlchemy type -> kind, the most specific first (REAL is a Float, Float a Numeric, BigInteger an Integer).
_KINDS: tuple[tuple[type, str], ...] = (
    (sa.Date, "date"),
    (sa.REAL, "float4"),
    (sa.Float, "float8"),
    (sa.Numeric, "numeric"),
    (sa.SmallInteger, "int2"),
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.String, "text"),
)


@functools.cache
def _kind_of_type(type_class: type) -> str | None:
    """The kind of a SQLAlchemy type class by _KINDS (cached: called per column of every batch)."""
    return next((kind for sa_type, kind in _KINDS if issubclass(type_class, sa_type)), None)


def kind_of(column: sa.Column, *, default: str | None = None) -> str:
    """The kind of a model column; an unsupported type raises TypeError unless `default` is given."""
    type_ = column.type
    if isinstance(type_, JSONB | JSON):
        return "jsonb"
    if isinstance(type_, sa.DateTime):
        if not type_.timezone and default is None:
            raise TypeError(f"{column.table.name}.{column.name} is a timestamp without time zone")
        return "timestamp"
    kind = _kind_of_type(type(type_))
    if kind is not None:
        return kind
    if default is not None:
        return default
    raise TypeError(f"{column.table.name}.{column.name}: column type {type_!r} is not supported by upsert")


def numeric_bounds(column: sa.Column) -> tuple[int, int]:
    """(precision, scale) of a numeric column; unconstrained numeric is written as numeric(38, 10)."""
    precision = getattr(column.type, "precision", None) or 38
    scale = getattr(column.type, "scale", None)
    return precision, 10 if scale is None else scale


_ARROW_TYPES = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float8": pa.float64(),
    "float4": pa.float32(),
    "int8": pa.int64(),
    "int4": pa.int32(),
    "int2": pa.int16(),
    "bool": pa.bool_(),
    "text": pa.large_string(),
    "jsonb": pa.large_string(),
}


def arrow_type(kind: str, precision: int = 38, scale: int = 10, *, large_text: bool = True) -> pa.DataType:
    """The Arrow type whose PostgreSQL binary encoding is exactly the column's (pgpq writes text as large
    strings; reads return plain strings, `large_text=False`)."""
    if kind == "numeric":
        return pa.decimal128(precision, scale)
    if kind in ("text", "jsonb") and not large_text:
        return pa.string()
    return _ARROW_TYPES[kind]


# --------------------------------------------------------------------------------------------------------
# Storage typing: exact types required, wrong values refused


class BadValues(Exception):
    """Rows of a column whose values cannot be stored as its kind: `rule` says why, `mask` which rows."""

    def __init__(self, rule: str, mask):
        super().__init__(rule)
        self.rule = rule
        self.mask = np.asarray(mask, dtype=bool)


def is_na(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _is_number(value) -> bool:
    return isinstance(value, int | float | Decimal | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _object_mask(values: np.ndarray, bad: Callable[[object], bool]) -> np.ndarray:
    return np.fromiter((not is_na(v) and bad(v) for v in values), dtype=bool, count=len(values))


def _not_null(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


def _timestamp(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = s if str(dtype.tz) == "UTC" else s.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(dtype):
        raise BadValues(
            "naive timestamps (no time zone); localize them first, e.g. .dt.tz_localize('UTC')", _not_null(s)
        )
    elif pd.api.types.is_object_dtype(dtype):
        values = s.to_numpy()
        wrong = _object_mask(values, lambda v: not isinstance(v, datetime))
        if wrong.any():
            raise BadValues("values that are not datetimes in a timestamp column", wrong)
        naive = _object_mask(values, lambda v: v.tzinfo is None)
        if naive.any():
            raise BadValues("naive timestamps (no time zone); give them a zone (UTC)", naive)
        out = pd.to_datetime(s, utc=True)
    else:
        raise BadValues(f"dtype {dtype} where tz-aware timestamps are expected", _not_null(s))
    return out if out.dtype.unit == "us" else out.dt.as_unit("us")  # PostgreSQL keeps microseconds


def _float(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    np_dtype = np.float32 if kind == "float4" else np.float64
    dtype = s.dtype
    if dtype == np_dtype:
        return s
    if pd.api.types.is_bool_dtype(dtype):
        raise BadValues("booleans where numbers are expected", _not_null(s))
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return pd.Series(s.to_numpy(dtype=np_dtype, na_value=np.nan), index=s.index, name=s.name)
    if pd.api.types.is_object_dtype(dtype):
        values = s.to_numpy()
        wrong = _object_mask(values, lambda v: not _is_number(v))
        if wrong.any():
            raise BadValues("non-numeric values where numbers are expected", wrong)
        numbers = np.array([np.nan if is_na(v) else float(v) for v in values], dtype=np_dtype)
        return pd.Series(numbers, index=s.index, name=s.name)
    raise BadValues(f"dtype {dtype} where numbers are expected", _not_null(s))


_INT_DTYPES = {"int8": ("Int64", np.int64), "int4": ("Int32", np.int32), "int2": ("Int16", np.int16)}


def _int(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    nullable, np_dtype = _INT_DTYPES[kind]
    info = np.iinfo(np_dtype)
    dtype = s.dtype
    if dtype == nullable:
        return s
    if pd.api.types.is_bool_dtype(dtype):
        raise BadValues("booleans where integers are expected", _not_null(s))
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        numbers = (
            s.to_numpy(dtype=np.float64, na_value=np.nan) if pd.api.types.is_float_dtype(dtype) else None
        )
        if numbers is not None:
            fractional = ~np.isnan(numbers) & (numbers != np.floor(numbers))
            if fractional.any():
                raise BadValues("non-integral values where integers are expected", fractional)
        as_int = s.astype("Int64") if numbers is None else pd.Series(numbers, index=s.index).astype("Int64")
        values = as_int.to_numpy(dtype=np.float64, na_value=np.nan)
        out_of_range = ~np.isnan(values) & ((values < info.min) | (values > info.max))
        if out_of_range.any():
            raise BadValues(f"values outside the range of {kind}", out_of_range)
        return as_int.astype(nullable).rename(s.name)
    if pd.api.types.is_object_dtype(dtype):
        values = s.to_numpy()
        wrong = _object_mask(
            values, lambda v: not _is_number(v) or not math.isfinite(float(v)) or float(v) != int(v)
        )
        if wrong.any():
            raise BadValues("values that are not integers where integers are expected", wrong)
        out_of_range = _object_mask(values, lambda v: not info.min <= int(v) <= info.max)
        if out_of_range.any():
            raise BadValues(f"values outside the range of {kind}", out_of_range)
        ints = [None if is_na(v) else int(v) for v in values]
        return pd.Series(pd.array(ints, dtype=nullable), index=s.index, name=s.name)
    raise BadValues(f"dtype {dtype} where integers are expected", _not_null(s))


def _bool(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    dtype = s.dtype
    if dtype == "boolean":
        return s
    if pd.api.types.is_bool_dtype(dtype):
        return s.astype("boolean")
    if pd.api.types.is_object_dtype(dtype):
        wrong = _object_mask(s.to_numpy(), lambda v: not isinstance(v, bool | np.bool_))
        if wrong.any():
            raise BadValues("values that are not booleans in a boolean column", wrong)
        return s.astype("boolean")
    raise BadValues(f"dtype {dtype} where booleans are expected", _not_null(s))


def _text(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        s = s.astype(object).where(s.notna(), None)
        dtype = s.dtype
    if isinstance(dtype, pd.StringDtype):
        return s
    if pd.api.types.is_object_dtype(dtype):
        if pd.api.types.infer_dtype(s, skipna=True) not in {"string", "empty"}:
            raise BadValues(
                "values that are not strings in a text column",
                _object_mask(s.to_numpy(), lambda v: not isinstance(v, str)),
            )
        return s
    raise BadValues(f"dtype {dtype} where strings are expected", _not_null(s))


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonb(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    """Python objects (dict, list, scalars) as JSON text; NaN and Infinity are not JSON and are refused."""
    values = s.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    wrong = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if not isinstance(value, dict | list) and is_na(value):
            out[i] = None
            continue
        try:
            out[i] = json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_default)
        except (TypeError, ValueError):
            wrong[i] = True
    if wrong.any():
        raise BadValues("values that cannot be stored as JSON (NaN, Infinity or unsupported types)", wrong)
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


def _numeric(s: pd.Series, kind: str, precision: int, scale: int) -> pd.Series:
    """Exact decimals, rounded to the column's scale the way PostgreSQL rounds numeric (half away from 0)."""
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)
    values = s.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    wrong = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if is_na(value):
            out[i] = None
            continue
        if not _is_number(value):
            wrong[i] = True
            continue
        try:
            number = (
                value
                if isinstance(value, Decimal)
                else Decimal(repr(float(value)) if isinstance(value, float | np.floating) else int(value))
            )
            number = number.quantize(quantum, rounding=ROUND_HALF_UP)
        except (InvalidOperation, ValueError):
            wrong[i] = True
            continue
        if not number.is_finite() or abs(number) >= limit:
            wrong[i] = True
        out[i] = number
    if wrong.any():
        raise BadValues(f"values that are not finite numbers within numeric({precision},{scale})", wrong)
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


_STORAGE = {
    "timestamp": _timestamp,
    "float8": _float,
    "float4": _float,
    "int8": _int,
    "int4": _int,
    "int2": _int,
    "bool": _bool,
    "text": _text,
    "jsonb": _jsonb,
    "numeric": _numeric,
}


def to_storage(s: pd.Series, kind: str, precision: int = 38, scale: int = 10) -> pd.Series:
    """`s` with the storage dtype of `kind`, or `BadValues` naming the offending rows.

    A column that already has its storage dtype is returned unchanged (no copy).
    """
    return _STORAGE[kind](s, kind, precision, scale)


# --------------------------------------------------------------------------------------------------------
# Parsing of source values: lenient, failing rows marked (not raised)


class UnusableColumn(ValueError):
    """A whole column that cannot be typed (naive timestamps, booleans for numbers): nothing to quarantine
    row by row, the source must change."""


_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
Parsed = tuple[pd.Series, pd.Series, pd.Series]  # values, unparseable mask, message per unparseable row


def _fail_text(raw: pd.Series, bad: pd.Series, why: str) -> pd.Series:
    return (raw.name + "=" + raw[bad].astype(str).str.slice(0, 60) + f" ({why})").reindex(raw.index)


def _ok(raw: pd.Series) -> pd.Series:
    return pd.Series(False, index=raw.index)


def _parse_time(raw: pd.Series) -> Parsed:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC"), _ok(raw), pd.Series(dtype=object)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        raise UnusableColumn(
            f"column {raw.name!r} holds naive timestamps: declare the source's time zone (UTC expected)"
        )
    present = raw.notna()
    naive = _ok(raw)
    if present.any():
        values = raw[present]
        is_str = values.map(lambda v: isinstance(v, str))
        strings = values[is_str]
        naive.loc[strings.index] = ~strings.str.strip().str.contains(_TZ_SUFFIX)
        others = values[~is_str]
        if len(others):
            naive.loc[others.index] = others.map(
                lambda v: not isinstance(v, datetime) or v.tzinfo is None or pd.isna(v)
            )
    parsed = pd.to_datetime(raw.where(~naive), utc=True, errors="coerce", format="ISO8601")
    bad = present & (parsed.isna() | naive)
    why = pd.Series("unparseable timestamp", index=raw.index).where(~naive, "timestamp without time zone")
    text = (raw.name + "=" + raw[bad].astype(str).str.slice(0, 60) + " (" + why[bad] + ")").reindex(raw.index)
    return parsed, bad, text


def _parse_float(raw: pd.Series) -> Parsed:
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise UnusableColumn(f"column {raw.name!r} is boolean where a number is expected")
    if raw.dtype == np.float64:
        values = raw
        bad = pd.Series(np.isinf(values.to_numpy()), index=raw.index)
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.astype("float64")
        bad = pd.Series(~np.isfinite(values.to_numpy()) & values.notna().to_numpy(), index=raw.index)
    else:
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        finite = np.isfinite(values.to_numpy())
        bad = pd.Series(raw.notna().to_numpy() & ~finite, index=raw.index)
    if bad.any():
        values = values.where(~bad)
    return values, bad, _fail_text(raw, bad, "not a finite number") if bad.any() else pd.Series(dtype=object)


def _parse_int(raw: pd.Series) -> Parsed:
    if pd.api.types.is_integer_dtype(raw.dtype):  # numpy or nullable ints: nothing to parse, nothing lost
        return raw, _ok(raw), pd.Series(dtype=object)
    values = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw.dtype) else raw
    values = values.astype("float64")
    arr = values.to_numpy()
    ok = np.isfinite(arr) & (np.floor(arr) == arr)
    bad = pd.Series(raw.notna().to_numpy() & ~ok, index=raw.index)
    out = values.where(pd.Series(ok, index=raw.index)).astype("Int64")
    return out, bad, _fail_text(raw, bad, "not an integer") if bad.any() else pd.Series(dtype=object)


# 1 == True and 0 == False as dict keys, so integer flags map too.
_BOOLS = {
    True: True,
    False: False,
    "true": True,
    "false": False,
    "t": True,
    "f": False,
    "1": True,
    "0": False,
}


def _parse_bool(raw: pd.Series) -> Parsed:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), _ok(raw), pd.Series(dtype=object)
    mapped = raw.map(lambda v: _BOOLS.get(v.lower() if isinstance(v, str) else v) if pd.notna(v) else None)
    bad = raw.notna() & mapped.isna()
    return mapped.astype("boolean"), bad, _fail_text(raw, bad, "not a boolean") if bad.any() else pd.Series()


def _parse_text(raw: pd.Series) -> Parsed:
    if pd.api.types.is_string_dtype(raw.dtype) and not pd.api.types.is_object_dtype(raw.dtype):
        return raw, _ok(raw), pd.Series(dtype=object)
    present = raw.notna()
    out = raw.astype(object).where(present, None)
    if present.any():
        out[present] = raw[present].map(str)
    return out, _ok(raw), pd.Series(dtype=object)


def _parse_numeric(raw: pd.Series) -> Parsed:
    """Exact money columns: check parseability, keep the given values (no float rounding)."""
    _, bad, text = _parse_float(raw)
    return raw, bad, text


def _parse_date(raw: pd.Series) -> Parsed:
    parsed = pd.to_datetime(raw, errors="coerce")
    bad = raw.notna() & parsed.isna()
    return parsed.dt.date, bad, _fail_text(raw, bad, "not a date") if bad.any() else pd.Series(dtype=object)


_PARSERS: dict[str, Callable[[pd.Series], Parsed]] = {
    "timestamp": _parse_time,
    "float8": _parse_float,
    "float4": _parse_float,
    "int8": _parse_int,
    "int4": _parse_int,
    "int2": _parse_int,
    "bool": _parse_bool,
    "text": _parse_text,
    "numeric": _parse_numeric,
    "date": _parse_date,
}
# Kinds the split leaves as parsed: objects converted once at the write, and `real` (see the docstring).
_TYPED_AT_WRITE = frozenset({"numeric", "jsonb", "float4", "date"})


def parse(raw: pd.Series, kind: str) -> Parsed:
    """Source values of one column, parsed and typed for storage where the split types them.

    Returns the values, the mask of rows that cannot be typed and a message per such row; raises
    `UnusableColumn` when the whole column is unusable. `jsonb` values pass as they are.
    """
    if kind == "jsonb":
        return raw, _ok(raw), pd.Series(dtype=object)
    values, bad, text = _PARSERS[kind](raw)
    if kind in _TYPED_AT_WRITE:
        return values, bad, text
    try:
        return to_storage(values, kind), bad, text
    except BadValues as wrong:  # e.g. an integer beyond int4: those rows cannot be stored
        rows = pd.Series(wrong.mask, index=raw.index) & ~bad
        text = pd.concat([text.dropna(), _fail_text(raw, rows, wrong.rule)[rows]]).reindex(raw.index)
        keep = pd.Series(~wrong.mask, index=raw.index)
        return to_storage(values.where(keep), kind), bad | rows, text
