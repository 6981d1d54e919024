"""Arrow record batches -> bounded pandas frames, shared by the CSV, Parquet and Feather readers.

Decoding stays in Arrow (C++) as far as it can: batches are re-cut to at most `batch_rows` rows without
copying, dictionary columns are decoded, and text columns that are all numbers become numbers there. A
text column with one value that is not a number stays text, so the shared typing step
(`resources.files.values`) rejects exactly that row with its message, as it does for JSON.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.timestamps import NUMBER_PATTERN

NUMBER = re.compile(NUMBER_PATTERN)  # what the shared step reads as a number, in a text column


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The batches' rows in tables of exactly `rows` rows (the last one fewer); slices, not copies."""
    rows = max(1, rows)
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _first_value(column: pa.ChunkedArray, probe: int = 1_000) -> str | None:
    """The first non-null value among the first rows of each chunk (None when they are all null)."""
    for chunk in column.chunks:
        head = chunk.slice(0, probe)
        if head.null_count < len(head):
            return head.drop_null()[0].as_py()
    return None


def _numeric_or_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column as float64 when every value is a number; else unchanged.

    Only a column whose first value is a number is tried (a failing cast costs as much as ten good ones).
    A 'NaN' text stays text: typed it would read as a missing value, not as the non-number it is. Times
    are read as float64 by the shared step anyway, so nothing is lost by not trying int64.
    """
    first = _first_value(column)
    if first is None or not NUMBER.match(first):
        return column
    try:
        cast = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column
    return column if pc.any(pc.is_nan(cast)).as_py() else cast


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def arrow_frame(table: pa.Table, first_row: int, labels: Iterable[int] | None = None) -> pd.DataFrame:
    """A pandas frame of the table, rows labelled `first_row`, `first_row + 1`, ... (or `labels`)."""
    columns = []
    for column in table.columns:
        column = _decoded(column)
        columns.append(_numeric_or_text(column) if _is_text(column.type) else column)
    frame = pa.table(columns, names=table.column_names).to_pandas(date_as_object=False)
    if labels is None:
        frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
    else:
        frame.index = pd.Index(list(labels), name="row")
    return frame


@contextlib.contextmanager
def decoding(what: str) -> Iterator[None]:
    """Errors of a broken file (Arrow's, a truncated compressed stream's) as `LandingFileError`."""
    try:
        yield
    except LandingFileError:
        raise
    except (pa.ArrowException, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise LandingFileError(f"cannot read the {what} data: {_first_line(exc)}") from None
    except OSError as exc:  # gzip's 'Not a gzipped file', a CRC error
        raise LandingFileError(f"cannot read the {what} data: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
