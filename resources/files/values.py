"""Typing one column of a raw table, with the rows that fail and why: numbers, and the exchange, symbol
and interval of the rows (from the rows, a wrapper, the path or a key, which must agree).

Shared by every reader through `resources.files.canonical`; a reader never types values itself, so a
price that is not a number is rejected with the same rule and message whatever the file's format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.naming import canonical_interval, normalize_symbol


@dataclass
class Reject:
    """Why one row is refused: a rule name (the quarantine's `rule`) and a message naming the value."""

    rule: str
    message: str


Rejects = dict[Any, Reject]  # row label -> why


def show(value: Any) -> str:
    """A raw value as quoted in a message, shortened."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def numbers(raw: pd.Series, name: str, *, required: bool, integer: bool) -> tuple[pd.Series, Rejects]:
    """Column as floats, with the rows whose value is missing (if required) or not a finite number."""
    if raw.dtype.kind == "b":
        raise LandingFileError(f"field {name!r} holds booleans where numbers are expected")
    values = _as_floats(raw)
    present = raw.notna()
    finite = pd.Series(np.isfinite(values.fillna(np.nan).to_numpy()), index=raw.index)
    bad: Rejects = {}
    for label in raw.index[present & ~finite]:
        bad[label] = Reject("non_numeric", f"{name}={show(raw[label])} is not a finite number")
    if integer:
        for label in raw.index[present & finite & (values % 1 != 0)]:
            bad[label] = Reject("non_integer", f"{name}={show(raw[label])} is not a whole number")
    if required:
        for label in raw.index[~present]:
            bad[label] = Reject("missing_value", f"{name} is missing")
    return values, bad


def _as_floats(raw: pd.Series) -> pd.Series:
    """Numbers and numeric strings as float64, anything else NaN; True/False are not 1/0."""
    if raw.dtype.kind in "iuf":
        return raw.astype("float64")
    is_bool = raw.map(lambda v: isinstance(v, bool | np.bool_)) if raw.dtype == object else None
    kept = raw.where(~is_bool) if is_bool is not None else raw
    return pd.to_numeric(kept, errors="coerce").astype("float64")


def normalized(raw: pd.Series, fn: Callable[[Any], str]) -> tuple[pd.Series, Rejects]:
    """Apply a normalizer to the distinct values only (columns of symbols repeat a few values)."""
    out = pd.Series(None, index=raw.index, dtype=object)
    bad: Rejects = {}
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
            bad[label] = Reject("invalid_value", str(result))
        else:
            out[label] = result
    return out, bad


def exchange_name(value: Any) -> str:
    text = str(value).strip().lower()
    if not text:
        raise LandingFileError("empty exchange name")
    return text


def symbol_name(value: Any) -> str:
    if not str(value).strip():
        raise LandingFileError("empty symbol")
    return normalize_symbol(str(value))


# Meta field -> its normalizer, in the order they are resolved.
META_NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "exchange": exchange_name,
    "symbol": symbol_name,
    "interval": canonical_interval,
}


def constant_text(value: str | None, index: pd.Index) -> pd.Series:
    """One text value on every row, as an Arrow-backed string column: the warehouse's split, grouping and
    null checks work on it in Arrow (an object column of the same string costs them a Python call per
    row: about a third of a file batch's validation). None stays an object column of None."""
    if value is None:
        return pd.Series(None, index=index, dtype=object)
    return pd.Series(value, index=index, dtype="str")


@dataclass
class MetaColumn:
    """One meta field per row (the file's value where a row has none) and where the fallback came from.

    `uniform` is True when no row has a value of its own: every row then holds the fallback, which lets
    the common single-series file skip per-row work (grouping, sorting, null checks on text columns).
    """

    values: pd.Series
    origin: str
    fallback: str | None = None
    uniform: bool = False


def resolve_meta(
    name: str,
    rows: pd.Series | None,
    wrapper: Any,
    path: str | None,
    hint: str | None,
    index: pd.Index,
) -> tuple[MetaColumn, Rejects]:
    """Per-row values of exchange/symbol/interval, filled with the file's value, and the rows refused.

    The file's own values (row fields, then wrapper fields) win over the path; when both exist they must
    agree, else the file is refused: a mismatch means one of the two is wrong and we cannot tell which.
    """
    fn = META_NORMALIZERS[name]
    per_row, bad = normalized(rows, fn) if rows is not None else (None, {})
    file_value = fn(wrapper) if wrapper is not None else None
    if path is not None:
        _agree_with_path(name, per_row, file_value, path)
    fallback, origin = _fallback(name, file_value, path, hint, fn)
    if per_row is None:
        return MetaColumn(constant_text(fallback, index), origin, fallback, uniform=True), bad
    return MetaColumn(per_row.where(per_row.notna(), fallback), origin, fallback), bad


def _agree_with_path(name: str, per_row: pd.Series | None, file_value: str | None, path: str) -> None:
    in_file = set(per_row.dropna().unique()) if per_row is not None else set()
    if file_value is not None:
        in_file.add(file_value)
    disagreeing = sorted(v for v in in_file if v != path)
    if disagreeing:
        raise LandingFileError(
            f"{name} in the file ({', '.join(map(repr, disagreeing[:3]))}) disagrees with the path ({path!r})"
        )


def _fallback(
    name: str, file_value: str | None, path: str | None, hint: str | None, fn: Callable[[Any], str]
) -> tuple[str | None, str]:
    if file_value is not None:
        return file_value, f"the file's {name!r} field"
    if path is not None:
        return path, "the path"
    if hint is not None:
        return fn(hint), f"the key {hint!r}"
    return None, f"the file's {name!r} field"
