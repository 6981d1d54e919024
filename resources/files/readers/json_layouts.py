"""JSON layouts of candles, one reader per family, and the wrapper walk that finds the rows.

Families (`RawTable.layout` in brackets where a reader tells variants apart):
- `array-of-arrays`: `[[ts, o, h, l, c, v, ...], ...]` [`binance-klines`, `kraken-ohlc`,
  `array-of-arrays+header`];
- `records` (pandas orient 'records'), `single-record`;
- pandas orients `split`, `table`, `columns`, `index`;
- `ndjson`: one JSON value per line [`ndjson-records`, `ndjson-arrays`]; a broken line rejects that line only.

The readers' `detect` are mutually exclusive (the tests check it on every family's sample), so their
registration order only decides among values no reader was written for. A dict no reader claims is a
wrapper such as `{"data": [...]}`, `{"result": {"list": [...]}}` or `{"results": [...], "ticker": ...}`:
`find_table` goes one level down (reported in `wrapper`) and keeps its symbol/exchange/interval/timezone.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.fields import INDEX_COLUMN, META_FIELDS, field_of, has_field, ohlc_count
from market_warehouse.resources.files.readers.base import RawTable, ReadContext, Reader, Registry
from market_warehouse.resources.files.readers.json_document import NdjsonLines
from market_warehouse.resources.files.readers.rows import (
    indexed_table,
    row_kind,
    table_from_arrays,
    table_from_records,
)

LAYOUTS: Registry[Reader] = Registry("JSON layout")

# Keys under which wrappers keep their rows, in order of preference.
DATA_KEYS = (
    "data", "result", "results", "candles", "klines", "ohlcv", "ohlc", "bars", "list", "rows", "records",
    "values", "items",
)  # fmt: skip
MAX_DEPTH = 6


def _rows_numbered(rows: list) -> list[int]:
    return list(range(1, len(rows) + 1))


def _all_dicts(value: dict) -> bool:
    return bool(value) and all(isinstance(v, dict) for v in value.values())


@LAYOUTS.register
class ArraysReader(Reader):
    """`[[time, open, high, low, close, volume, ...], ...]`, positional or under a header row."""

    name = "array-of-arrays"

    def detect(self, value: Any) -> bool:
        return isinstance(value, list) and bool(value) and row_kind(value) == "array"

    def read(self, value: list, context: ReadContext) -> RawTable:
        table = table_from_arrays(
            value, _rows_numbered(value), layout=self.name, pair_keyed=context.hint is not None
        )
        return context.attach(table)


@LAYOUTS.register
class RecordsReader(Reader):
    """`[{"time": ..., "open": ...}, ...]` (pandas orient 'records' and most APIs)."""

    name = "records"

    def detect(self, value: Any) -> bool:
        return isinstance(value, list) and bool(value) and row_kind(value) == "object"

    def read(self, value: list, context: ReadContext) -> RawTable:
        return context.attach(table_from_records(value, layout=self.name, numbers=_rows_numbered(value)))


@LAYOUTS.register
class SplitReader(Reader):
    """pandas orient 'split': `{"columns": [...], "index": [...], "data": [[...], ...]}`."""

    name = "split"

    def detect(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and isinstance(value.get("columns"), list)
            and isinstance(value.get("data"), list)
        )

    def read(self, value: dict, context: ReadContext) -> RawTable:
        columns, index = value["columns"], value.get("index")
        rows, numbers, rejected = [], [], []
        for number, row in enumerate(value["data"], start=1):
            if isinstance(row, list) and len(row) == len(columns):
                rows.append(row)
                numbers.append(number)
            else:
                rejected.append((number, "row_shape", f"row {number}: expected {len(columns)} values", row))
        frame = pd.DataFrame(rows, columns=columns, index=pd.Index(numbers, name="row"))
        if isinstance(index, list) and len(index) == len(value["data"]):
            frame[INDEX_COLUMN] = [index[n - 1] for n in numbers]
        table = indexed_table(frame, self.name)
        table.rejected = rejected
        return context.attach(table)


@LAYOUTS.register
class TableReader(Reader):
    """pandas orient 'table': `{"schema": {"fields": [...]}, "data": [{...}, ...]}`."""

    name = "table"

    def detect(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and isinstance(value.get("schema"), dict)
            and isinstance(value.get("data"), list)
            and not SplitReader().detect(value)
        )

    def read(self, value: dict, context: ReadContext) -> RawTable:
        table = table_from_records(value["data"], layout=self.name, numbers=_rows_numbered(value["data"]))
        if "time" not in table.mapping:
            self._time_from_schema(table, value["schema"])
        return context.attach(table)

    @staticmethod
    def _time_from_schema(table: RawTable, schema: dict) -> None:
        """A column the schema types as datetime holds the times, whatever its name."""
        fields = schema.get("fields") or []
        times = [
            f.get("name") for f in fields if isinstance(f, dict) and str(f.get("type")).startswith("datetime")
        ]
        if len(times) == 1 and times[0] in table.frame.columns:
            table.mapping["time"] = times[0]
            table.warnings = [w for w in table.warnings if not w.startswith("fields not loaded")]
            table.note_unused([str(c) for c in table.frame.columns if c not in table.mapping.values()])


def _reindexed(frame: pd.DataFrame) -> pd.DataFrame:
    """pandas 'columns' / 'index' orients: the frame's index becomes a column, rows are numbered."""
    frame = frame.copy()
    frame[INDEX_COLUMN] = list(frame.index)
    frame.index = pd.Index(range(1, len(frame) + 1), name="row")
    return frame


@LAYOUTS.register
class ColumnsReader(Reader):
    """pandas orient 'columns': `{"open": {"<time>": 1.0, ...}, "high": {...}, ...}`."""

    name = "columns"

    def detect(self, value: Any) -> bool:
        return isinstance(value, dict) and _all_dicts(value) and ohlc_count(value) >= 4

    def read(self, value: dict, context: ReadContext) -> RawTable:
        return context.attach(indexed_table(_reindexed(pd.DataFrame(value)), self.name))


@LAYOUTS.register
class IndexReader(Reader):
    """pandas orient 'index': `{"<time>": {"open": 1.0, ...}, ...}`."""

    name = "index"

    def detect(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and _all_dicts(value)
            and ohlc_count(value) < 4
            and not any(k in DATA_KEYS for k in value)
            and ohlc_count(next(iter(value.values()))) >= 4
        )

    def read(self, value: dict, context: ReadContext) -> RawTable:
        frame = pd.DataFrame.from_dict(value, orient="index")
        return context.attach(indexed_table(_reindexed(frame), self.name))


@LAYOUTS.register
class SingleRecordReader(Reader):
    """One candle as one object: `{"time": ..., "open": ..., ...}`."""

    name = "single-record"

    def detect(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and not _all_dicts(value)
            and ohlc_count(value) >= 4
            and has_field(value, "time")
            and not SplitReader().detect(value)
            and not TableReader().detect(value)
        )

    def read(self, value: dict, context: ReadContext) -> RawTable:
        return context.attach(table_from_records([value], layout=self.name, numbers=[1]))


@LAYOUTS.register
class NdjsonReader(Reader):
    """One JSON value per line, arrays or objects; a line that is not JSON is rejected on its own."""

    name = "ndjson"

    def detect(self, value: Any) -> bool:
        return isinstance(value, NdjsonLines)

    def read(self, value: NdjsonLines, context: ReadContext) -> RawTable:
        broken, numbers, rows = [], [], []
        for number, item in value.lines:
            if isinstance(item, Exception):
                broken.append((number, item))
            else:
                numbers.append(number)
                rows.append(item)
        if not rows:
            raise LandingFileError("no line of the NDJSON file is valid JSON")
        kind = row_kind(rows)
        if kind == "array":
            table = table_from_arrays(rows, numbers, layout="ndjson-arrays")
        elif kind == "object":
            table = table_from_records(rows, layout="ndjson-records", numbers=numbers)
        else:
            raise LandingFileError("NDJSON lines hold neither arrays nor objects")
        for number, exc in broken:
            message = f"line {number}: invalid JSON ({getattr(exc, 'msg', exc)})"
            table.rejected.append((number, "invalid_json", message, getattr(exc, "line_text", None)))
        return context.attach(table)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, list | dict) and not value)


def find_table(document: Any) -> RawTable | None:
    """The raw table of a JSON document (wrappers walked through); None when it holds no rows at all."""
    return _find(document, ReadContext(), depth=0)


def _find(value: Any, context: ReadContext, *, depth: int) -> RawTable | None:
    if depth > MAX_DEPTH:
        raise LandingFileError(f"no candle data found within {MAX_DEPTH} levels of nesting")
    if _is_empty(value):
        return None
    reader = LAYOUTS.detect(value)
    if reader is not None:
        return reader.read(value, context)
    if isinstance(value, dict):
        return _unwrap(value, context, depth=depth)
    if isinstance(value, list):
        raise LandingFileError(
            f"the array holds {type(value[0]).__name__} values, not candles (rows or objects)"
        )
    raise LandingFileError(f"the document is a single {type(value).__name__}, not candles")


def _is_wrapper_meta(key: str, value: Any) -> bool:
    return (
        field_of(key) in META_FIELDS and isinstance(value, str | int | float) and not isinstance(value, bool)
    )


def _unwrap(value: dict, context: ReadContext, *, depth: int) -> RawTable | None:
    """One level into a wrapper: its data key, else its only container; its meta fields kept."""
    meta = {**context.meta}
    for key, item in value.items():
        if _is_wrapper_meta(key, item):
            meta.setdefault(field_of(key), item)
    containers = {k: v for k, v in value.items() if isinstance(v, list | dict)}
    errors = {k: v for k, v in value.items() if str(k).lower() in {"error", "errors"} and v}
    for key in DATA_KEYS:
        if key in containers and key not in errors:
            return _find(containers[key], context.inside(key, meta, hint=context.hint), depth=depth + 1)
    candidates = {k: v for k, v in containers.items() if k not in errors and str(k).lower() != "error"}
    if len(candidates) == 1:
        ((key, inner),) = candidates.items()
        # A lone list under an unknown key is keyed by its instrument (Kraken: {"XXBTZUSD": [...], "last": n}).
        hint = key if isinstance(inner, list) else context.hint
        return _find(inner, context.inside(key, meta, hint=hint), depth=depth + 1)
    raise _no_candles(value, containers, errors)


def _no_candles(value: dict, containers: dict, errors: dict) -> LandingFileError:
    scalars = {k: v for k, v in value.items() if not isinstance(v, list | dict)}
    if errors or not containers:
        detail = ", ".join(f"{k}={v!r}" for k, v in list({**scalars, **errors}.items())[:4])
        return LandingFileError(
            f"no candle data in the object (keys {keys_text(value)}){': ' + detail if detail else ''}"
        )
    return LandingFileError(
        f"no candle data found: the object's keys {keys_text(value)} match no known layout "
        f"(expected e.g. {{'data': [...]}} or pandas orients)"
    )


def keys_text(value: dict) -> str:
    keys = [str(k) for k in value]
    return "[" + ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "") + "]"
