"""Timestamps in landed files: epoch numbers in s / ms / µs / ns, ISO 8601 strings, or typed timestamps.

Exports rarely say which unit they use, so the unit is told apart by magnitude, once per file (the median
value of the file, or of its first batch when it is read in batches, decides) and reported. A row whose value has another magnitude than the file's unit is rejected rather
than silently read in the wrong unit: one stray value in seconds inside a millisecond file would otherwise
become a candle in January 1970. Naive ISO strings (no `Z` or offset) are an error unless the source
declares its zone, because guessing UTC for local exchange times shifts every candle; the same holds for
Parquet/Arrow timestamps without a zone. Their unit is reported as 'timestamp'.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.values import show as _show

EPOCH_UNITS = ("s", "ms", "us", "ns")
# |value| below bound[i] reads as EPOCH_UNITS[i]. Each bound is where the finer unit reaches March 1973 and
# the coarser one passes year 5138, so every date from 1973 to 5138 gets its unit right.
_BOUNDS = np.array([1e11, 1e14, 1e17])
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}

# Candle times outside this window are typos or wrong units, not market history.
EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
LATEST = pd.Timestamp("2200-01-01", tz="UTC")

# Plain strings, not compiled patterns: pandas then runs them vectorized in Arrow (RE2) on string columns.
_DATE_TIME = r"\d{4}-?\d{2}-?\d{2}(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?"
_ZONE = r"[ \t]*(?:[Zz]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)"
_ISO = f"^{_DATE_TIME}(?:{_ZONE})?$"
_ISO_ZONED = f"^{_DATE_TIME}{_ZONE}$"
NUMBER_PATTERN = r"^[ \t]*[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[ \t]*$"


@dataclass
class ParsedTimes:
    """Times of one column: UTC timestamps (NaT where rejected), the unit found, and why rows were rejected."""

    times: pd.Series
    unit: str  # 's', 'ms', 'us', 'ns' or 'iso'
    rejected: dict = field(default_factory=dict)  # index label -> (rule, message)


def validate_timezone(name: str) -> str:
    """The zone name if the tz database knows it; a clear error otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LandingFileError(f"unknown time zone {name!r} (expected an IANA name such as 'UTC')") from None
    return name


def epoch_unit(magnitude: float) -> str:
    """The epoch unit whose range holds a value of this magnitude."""
    return EPOCH_UNITS[int(np.searchsorted(_BOUNDS, abs(magnitude), side="right"))]


def parse_times(
    values: pd.Series, *, field_name: str, timezone: str | None = None, unit: str | None = None
) -> ParsedTimes:
    """Parse one column of times; numbers (or numeric strings) as epochs, other strings as ISO 8601,
    typed timestamps (Parquet, Arrow) as they are.

    `unit` is the epoch unit already found in the file's earlier rows (a file read in batches has one
    unit, told by its first batch). Raises `LandingFileError` only for problems of the whole column (naive
    times and no declared zone); single bad values are returned in `rejected` so the row can be quarantined.
    """
    present = values.notna()
    if not present.any():
        raise LandingFileError(f"field {field_name!r} has no values")
    if values.dtype.kind == "M":
        return _typed_times(values, present, field_name, timezone)
    if values.dtype.kind in "iuf":
        return _parse_epochs(values.astype("float64"), present, field_name, unit)
    if values.dtype.kind == "b":
        raise LandingFileError(f"field {field_name!r} holds booleans, not times")
    if values.dtype == object:
        kinds = values.map(type)
        text = values.where(kinds.isin([str])).astype("str")
        numeric = text.str.match(NUMBER_PATTERN, na=False) | kinds.isin([int, float])
    else:  # a string column
        text = values
        numeric = text.str.match(NUMBER_PATTERN, na=False)
    if numeric.sum() * 2 >= present.sum():
        numbers = pd.to_numeric(values.where(numeric), errors="coerce")
        parsed = _parse_epochs(numbers.astype("float64"), numbers.notna(), field_name, unit)
        for label in values.index[present & numbers.isna()]:
            parsed.rejected[label] = (
                "unparseable_time",
                f"{field_name}={_show(values[label])} is not an epoch number like the rest of the file",
            )
        return parsed
    return _parse_iso(values, text, present, field_name, timezone)


def _parse_epochs(
    numbers: pd.Series, present: pd.Series, field_name: str, unit: str | None = None
) -> ParsedTimes:
    finite = present & np.isfinite(numbers.fillna(0.0))
    magnitudes = numbers[finite].abs()
    if magnitudes.empty:
        raise LandingFileError(f"field {field_name!r} has no finite epoch numbers")
    if unit not in EPOCH_UNITS:
        unit = epoch_unit(float(magnitudes.median()))
    classes = pd.Series(
        np.searchsorted(_BOUNDS, numbers.abs().fillna(0.0), side="right"), index=numbers.index
    )
    same_unit = finite & (classes == EPOCH_UNITS.index(unit))
    seconds = numbers / _PER_SECOND[unit]
    in_window = (seconds >= EARLIEST.timestamp()) & (seconds < LATEST.timestamp())
    good = same_unit & in_window
    times = pd.to_datetime(numbers.where(good), unit=unit, utc=True)
    rejected: dict = {}
    for label in numbers.index[present & ~good]:
        value = numbers[label]
        if not np.isfinite(value):
            rejected[label] = ("unparseable_time", f"{field_name}={value} is not a finite number")
        elif not same_unit[label]:
            other = EPOCH_UNITS[classes[label]]
            rejected[label] = (
                "timestamp_unit",
                f"{field_name}={_show(_as_int(value))} looks like epoch {other}, "
                f"but this file's timestamps are epoch {unit}",
            )
        else:
            rejected[label] = (
                "timestamp_out_of_range",
                f"{field_name}={_show(_as_int(value))} (epoch {unit}) is outside "
                f"{EARLIEST.year}..{LATEST.year}",
            )
    return ParsedTimes(times=times, unit=unit, rejected=rejected)


def _as_int(value: float):
    return int(value) if float(value).is_integer() else value


def _parse_iso(
    values: pd.Series, text: pd.Series, present: pd.Series, field_name: str, timezone: str | None
) -> ParsedTimes:
    stripped = text.str.strip()
    is_iso = stripped.str.match(_ISO, na=False)
    zoned = stripped.str.match(_ISO_ZONED, na=False)
    naive = is_iso & ~zoned
    times = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    rejected: dict = {}
    if zoned.any():
        normalized = stripped[zoned]
        named = normalized.str.contains(r"(?:UTC|GMT)$", na=False)
        if named.any():
            normalized = normalized.where(
                ~named, normalized.str.replace(r"[ \t]*(?:UTC|GMT)$", "+00:00", regex=True)
            )
        times.loc[zoned] = pd.to_datetime(normalized, format="ISO8601", utc=True, errors="coerce")
    if naive.any():
        if timezone is None and not zoned.any():
            example = stripped[naive].iloc[0]
            raise LandingFileError(
                f"field {field_name!r} holds ISO times without a zone (e.g. {example!r}); "
                "write them with 'Z' or an offset, or declare the zone (a 'timezone' field in the file, "
                "or the landing folder's default time zone)"
            )
        if timezone is not None:
            local = pd.to_datetime(stripped[naive], format="ISO8601", errors="coerce")
            localized = local.dt.tz_localize(
                validate_timezone(timezone), ambiguous="NaT", nonexistent="NaT"
            ).dt.tz_convert("UTC")
            times.loc[naive] = localized
        else:
            for label in values.index[naive]:
                rejected[label] = (
                    "naive_time",
                    f"{field_name}={_show(values[label])} has no zone while the file's other times do",
                )
    for label in values.index[present & ~is_iso]:
        rejected[label] = (
            "unparseable_time",
            f"{field_name}={_show(values[label])} is neither an ISO 8601 time nor an epoch number",
        )
    for label in values.index[is_iso & times.isna()]:
        if label not in rejected:
            rejected[label] = (
                "unparseable_time",
                f"{field_name}={_show(values[label])} is not a valid (or, in {timezone}, an unambiguous) time",
            )
    outside = times.notna() & ((times < EARLIEST) | (times >= LATEST))
    for label in values.index[outside]:
        rejected[label] = (
            "timestamp_out_of_range",
            f"{field_name}={_show(values[label])} is outside {EARLIEST.year}..{LATEST.year}",
        )
    times.loc[outside] = pd.NaT
    return ParsedTimes(times=times, unit="iso", rejected=rejected)


def _typed_times(values: pd.Series, present: pd.Series, field_name: str, timezone: str | None) -> ParsedTimes:
    """A timestamp column: with a zone, converted to UTC; without one, in the declared zone (like naive
    ISO strings: a Parquet timestamp not adjusted to UTC is a local wall-clock time)."""
    if values.dt.tz is None:
        if timezone is None:
            raise LandingFileError(
                f"field {field_name!r} holds timestamps without a zone (e.g. {values[present].iloc[0]}); "
                "write them with a zone (e.g. UTC), or declare the zone (the landing folder's default "
                "time zone)"
            )
        values = values.dt.tz_localize(validate_timezone(timezone), ambiguous="NaT", nonexistent="NaT")
    times = values.dt.tz_convert("UTC")
    rejected: dict = {}
    for label in values.index[present & times.isna()]:
        rejected[label] = ("unparseable_time", f"{field_name}={values[label]} is not a time in {timezone}")
    outside = times.notna() & ((times < EARLIEST) | (times >= LATEST))
    for label in values.index[outside]:
        rejected[label] = (
            "timestamp_out_of_range",
            f"{field_name}={_show(str(times[label]))} is outside {EARLIEST.year}..{LATEST.year}",
        )
    return ParsedTimes(times=times.where(~outside), unit="timestamp", rejected=rejected)
