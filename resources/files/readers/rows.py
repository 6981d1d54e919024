"""Rows -> `RawTable`, shared by the readers: positional rows (ccxt order, Binance klines, Kraken OHLC),
named rows (field names mapped through the aliases) and pandas frames whose index may hold the times.

Positional rows come from JSON arrays and from header-less CSV alike; the layout they are read as is told
by their width and content here, once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.fields import INDEX_COLUMN, map_fields, ohlc_count
from market_warehouse.resources.files.readers.base import RawTable

# Positional layouts: array index -> canonical field.
CCXT = {0: "time", 1: "open", 2: "high", 3: "low", 4: "close", 5: "volume"}
BINANCE = {**CCXT, 7: "quote_volume", 8: "trades_count"}
KRAKEN = {0: "time", 1: "open", 2: "high", 3: "low", 4: "close", 5: "vwap", 6: "volume", 7: "trades_count"}
MIN_WIDTH = len(CCXT)


def row_kind(rows: list, sample: int = 1_000) -> str:
    """'array', 'object' or 'other' by majority of the first rows; rows of another kind are rejected later."""
    kinds = Counter(
        "array" if isinstance(r, list) else "object" if isinstance(r, dict) else "other"
        for r in rows[:sample]
    )
    return kinds.most_common(1)[0][0]


def is_header(row: list) -> bool:
    """A first row of field names: all text, covering at least four of open/high/low/close."""
    return all(isinstance(v, str) for v in row) and ohlc_count(row) >= 4


def check_width(width: int) -> None:
    if width < MIN_WIDTH:
        raise LandingFileError(
            f"rows have {width} fields: at least 6 expected ([time, open, high, low, close, volume, ...])"
        )


def positional_table(frame: pd.DataFrame, layout: str, *, pair_keyed: bool = False) -> RawTable:
    """Rows of `width` positional fields (columns 0..width-1): Binance klines, Kraken OHLC or ccxt order."""
    width = len(frame.columns)
    warnings: list[str] = []
    if width == 12 and _looks_like_binance(frame):
        name, mapping = "binance-klines", BINANCE
    elif width == 8 and pair_keyed:
        name, mapping = "kraken-ohlc", KRAKEN
    else:
        name, mapping = layout, CCXT
        if width > MIN_WIDTH:
            warnings.append(
                f"rows have {width} fields: read as [time, open, high, low, close, volume], "
                f"{width - MIN_WIDTH} trailing field(s) ignored"
            )
    return RawTable(layout=name, frame=frame, mapping={v: k for k, v in mapping.items()}, warnings=warnings)


def _looks_like_binance(frame: pd.DataFrame) -> bool:
    """Binance klines: field 6 is the close time (open time + interval - 1 ms), field 8 a trade count."""
    opens = pd.to_numeric(frame[0], errors="coerce")
    closes = pd.to_numeric(frame[6], errors="coerce")
    trades = pd.to_numeric(frame[8], errors="coerce")
    span = (closes - opens).dropna()
    return bool(len(span)) and bool((span > 0).all()) and bool((trades.dropna() % 1 == 0).all())


def named_table(frame: pd.DataFrame, layout: str) -> RawTable:
    """Rows whose columns are field names: mapped through the aliases, unused names reported."""
    mapping, unused = map_fields(list(frame.columns))
    table = RawTable(layout=layout, frame=frame, mapping=mapping)
    table.note_unused(unused)
    return table


def indexed_table(frame: pd.DataFrame, layout: str) -> RawTable:
    """A pandas frame (with its index in `INDEX_COLUMN`): the index holds the times unless a column does."""
    columns = [c for c in frame.columns if c != INDEX_COLUMN]
    mapping, unused = map_fields(columns)
    if "time" not in mapping and INDEX_COLUMN in frame.columns:
        index = frame[INDEX_COLUMN]
        numeric = pd.to_numeric(index, errors="coerce")
        if numeric.notna().all() and (numeric.to_numpy() == np.arange(len(index))).all():
            raise LandingFileError(
                f"pandas '{layout}' layout without times: no time field and the index is 0..{len(index) - 1}"
            )
        mapping["time"] = INDEX_COLUMN
    table = RawTable(layout=layout, frame=frame, mapping=mapping)
    table.note_unused(unused)
    return table


def table_from_records(rows: list, *, layout: str, numbers: list[int]) -> RawTable:
    """A list of objects (one per row); a row that is not an object is rejected with its number."""
    rejected: list[tuple[int, str, str, Any]] = []
    good, good_numbers = [], []
    for number, row in zip(numbers, rows, strict=True):
        if isinstance(row, dict):
            good.append(row)
            good_numbers.append(number)
        else:
            rejected.append(
                (number, "row_shape", f"row {number} is a {type(row).__name__}, not an object", row)
            )
    table = named_table(pd.DataFrame(good, index=pd.Index(good_numbers, name="row")), layout)
    table.rejected = rejected
    return table


def table_from_arrays(rows: list, numbers: list[int], *, layout: str, pair_keyed: bool = False) -> RawTable:
    """A list of arrays: with a header row read as records, else positionally by the common width."""
    if rows and isinstance(rows[0], list) and is_header(rows[0]):
        return _headed_arrays(rows, numbers, layout=layout)
    widths = Counter(len(r) for r in rows if isinstance(r, list))
    width = widths.most_common(1)[0][0]
    check_width(width)
    rejected: list[tuple[int, str, str, Any]] = []
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
    table = positional_table(frame, layout, pair_keyed=pair_keyed)
    table.rejected = rejected
    return table


def _headed_arrays(rows: list, numbers: list[int], *, layout: str) -> RawTable:
    header = rows[0]
    good, good_numbers, rejected = [], [], []
    for number, row in zip(numbers[1:], rows[1:], strict=True):
        if isinstance(row, list) and len(row) == len(header):
            good.append(dict(zip(header, row, strict=True)))
            good_numbers.append(number)
        else:
            rejected.append(
                (number, "row_shape", f"row {number}: expected {len(header)} fields like the header", row)
            )
    table = table_from_records(good, layout=f"{layout}+header", numbers=good_numbers)
    table.rejected[:0] = rejected
    return table
