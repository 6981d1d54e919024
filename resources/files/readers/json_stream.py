"""JSON read in bounded batches: NDJSON by lines, and a top-level array of flat rows by blocks.

- NDJSON (`.ndjson`, `.jsonl`, or a file whose first lines are each a whole JSON value): `batch_rows` lines
  at a time; a broken line is rejected on its own, as when the file is read whole.
- A top-level array of flat rows (`[[t, o, h, l, c, v], ...]` as freqtrade and Binance write candles and
  trades, or `[{"time": ..., ...}, ...]`): read in blocks of `BLOCK_BYTES`, cut between two rows (`],[` or
  `},{`) and decoded by orjson one block at a time, so memory follows the block, not the file. Streamed when
  the file is larger than `STREAM_BYTES` or compressed (its size unknown); a row holding arrays or objects
  (not flat) in the first block sends the file back to the whole-document reader.
- Anything else (wrappers such as `{"data": [...]}`, pandas orients) is one document, read whole: the
  bound is its decoded size (documented in the README's formats table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.readers.base import RawTable
from market_warehouse.resources.files.readers.containers import BOM, Source
from market_warehouse.resources.files.readers.json_document import NdjsonLines, parse_json, parse_lines
from market_warehouse.resources.files.readers.rows import is_header, table_from_arrays, table_from_records

STREAM_BYTES = 64 << 20
BLOCK_BYTES = 8 << 20
SAMPLE_BYTES = 1 << 16
_NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
_SEPARATORS = {b"[": re.compile(rb"\]\s*,\s*\["), b"{": re.compile(rb"\}\s*,\s*\{")}
_SCALARS = (int, float, str, bool, type(None))


class NotStreamable(Exception):
    """The document's shape is not one this module streams: read it whole."""


def is_ndjson(source: Source) -> bool:
    """NDJSON by suffix, or by content: the first two lines are each a whole JSON value."""
    if set(source.suffixes) & _NDJSON_SUFFIXES:
        return True
    with source.open() as handle:
        sample = handle.read(SAMPLE_BYTES)
    lines = [line for line in sample.removeprefix(BOM).split(b"\n") if line.strip()]
    complete = lines if len(sample) < SAMPLE_BYTES else lines[:-1]
    if len(complete) < 2:
        return False
    try:
        orjson.loads(complete[0])
        orjson.loads(complete[1])
    except orjson.JSONDecodeError:
        return False
    return True


def should_stream_array(source: Source) -> bool:
    """A top-level array large enough (or of unknown size) to be read in blocks."""
    if source.head.removeprefix(BOM).lstrip()[:1] != b"[":
        return False
    return source.path is None or source.path.stat().st_size > STREAM_BYTES


def ndjson_tables(source: Source, batch_rows: int) -> Iterator[RawTable]:
    """NDJSON, `batch_rows` non-empty lines per table, numbered by their line in the file."""
    from market_warehouse.resources.files.readers.json_layouts import find_table

    pending: list[tuple[int, bytes]] = []
    with source.open() as handle:
        for number, line in enumerate(handle, start=1):
            line = line.removeprefix(BOM) if number == 1 else line
            if line.strip():
                pending.append((number, line.rstrip(b"\r\n")))
            if len(pending) >= batch_rows:
                yield find_table(NdjsonLines(parse_lines(pending)))
                pending = []
    if pending:
        yield find_table(NdjsonLines(parse_lines(pending)))


def array_tables(source: Source, batch_rows: int) -> Iterator[RawTable]:
    """A top-level array of flat rows, `batch_rows` rows per table; `NotStreamable` before the first
    table when the rows are not flat."""
    first_row, header = 1, None
    with source.open() as handle:
        for rows in _array_rows(handle):
            if first_row == 1 and rows and isinstance(rows[0], list) and is_header(rows[0]):
                header, rows, first_row = rows[0], rows[1:], 2
            for start in range(0, len(rows), max(1, batch_rows)):
                chunk = rows[start : start + batch_rows]
                yield _table(chunk, first_row, header)
                first_row += len(chunk)


def _table(rows: list, first_row: int, header: list | None) -> RawTable:
    numbers = list(range(first_row, first_row + len(rows)))
    if header is not None:  # every batch read under the file's header, as the whole file would be
        return table_from_arrays([header, *rows], [first_row - 1, *numbers], layout="array-of-arrays")
    if rows and isinstance(rows[0], dict):
        return table_from_records(rows, layout="records", numbers=numbers)
    return table_from_arrays(rows, numbers, layout="array-of-arrays")


def _array_rows(handle: IO[bytes]) -> Iterator[list]:
    """Lists of rows, one per block, cut between two rows."""
    buffer = handle.read(BLOCK_BYTES).removeprefix(BOM).lstrip()
    if not buffer.startswith(b"["):
        raise NotStreamable
    buffer = buffer[1:].lstrip()
    separator = _SEPARATORS.get(buffer[:1])
    if separator is None:
        raise NotStreamable
    checked = False
    while block := handle.read(BLOCK_BYTES):
        searched = max(0, len(buffer) - 16)
        buffer += block
        last = None
        for last in separator.finditer(buffer, searched):  # noqa: B007 - the last match is wanted
            pass
        if last is None:
            continue
        rows = _decode(buffer[: last.start() + 1])
        buffer = buffer[last.end() - 1 :]
        checked = checked or _flat(rows)
        yield rows
    tail = buffer.rstrip()
    if not tail.endswith(b"]"):
        raise LandingFileError("the JSON array is not closed: the file is cut short")
    rows = _decode(tail[:-1])
    if not checked:
        _flat(rows)
    yield rows


def _flat(rows: list) -> bool:
    """Rows of scalars only (checked on the first rows), else `NotStreamable`."""
    for row in rows[:100]:
        values = row.values() if isinstance(row, dict) else row if isinstance(row, list) else [row]
        if not all(isinstance(v, _SCALARS) for v in values):
            raise NotStreamable
    return True


def _decode(segment: bytes) -> list[Any]:
    text = b"[" + segment + b"]"
    try:
        return parse_json(text)
    except ValueError as exc:  # orjson's and json's decode errors
        raise LandingFileError(f"invalid JSON in the array's rows: {exc}") from None
