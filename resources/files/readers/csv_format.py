"""CSV (and TSV, semicolon- or pipe-separated) candles, read in blocks by Arrow's streaming CSV reader.

Per file, from its first 64 KiB: the delimiter (the one that splits the sample's lines into the same number
of fields), and whether the first row is a header (no field of it is a number, while the next row has one).
A header is mapped through the field aliases; without one the rows are positional, read as JSON arrays are
(Binance klines with 12 fields, else ccxt order), decided on the first batch and kept for the file.

Every column is read as text and turned into numbers in Arrow when all its values are numbers; a value
that is not stays text, so the shared typing step rejects exactly its row. A row with another number of
fields than the header is rejected on its own ('row_shape'), with its text. Rows are numbered as Arrow
counts them: the header is row 1, blank lines are not counted.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.fields import PRICES, map_fields
from market_warehouse.resources.files.readers.arrow import NUMBER, arrow_frame, decoding, rechunk
from market_warehouse.resources.files.readers.base import FORMATS, FormatReader, RawTable, with_last
from market_warehouse.resources.files.readers.containers import BOM, Source, text_kind
from market_warehouse.resources.files.readers.rows import check_width, positional_table

SAMPLE_BYTES = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")
# Arrow's block: about one batch of rows. Arrow reads a few blocks ahead, so a block far above a batch
# only costs memory.
_MIN_BLOCK, _MAX_BLOCK = 1 << 20, 16 << 20


@dataclass
class Dialect:
    """What the sample told about the file."""

    delimiter: str
    header: list[str] | None  # None: positional rows
    width: int
    row_bytes: float  # average bytes per row, to size Arrow's blocks

    @property
    def names(self) -> list[str]:
        """Arrow column names: the header's (made unique), or positions '0', '1', ..."""
        if self.header is None:
            return [str(i) for i in range(self.width)]
        seen: Counter = Counter()
        names = []
        for name in self.header:
            seen[name] += 1
            names.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
        return names


def _sample_lines(sample: bytes, complete: bool) -> list[str]:
    text = sample.removeprefix(BOM).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # cut by the sample's end
    return [line for line in lines if line.strip()][:200]


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=delimiter))


def _delimiter(lines: list[str]) -> str:
    """The delimiter splitting most lines into the same number (> 1) of fields."""

    def score(delimiter: str) -> tuple[int, int]:
        widths = Counter(len(row) for row in _split(lines, delimiter))
        width, count = widths.most_common(1)[0]
        return (count, width) if width > 1 else (0, 0)

    return max(_DELIMITERS, key=score)


def _is_number(text: str) -> bool:
    return bool(NUMBER.match(text))


def _has_header(rows: list[list[str]]) -> bool:
    if any(_is_number(value) for value in rows[0]):
        return False
    return len(rows) == 1 or any(_is_number(value) for value in rows[1])


def sniff(sample: bytes, *, complete: bool) -> Dialect | None:
    """Delimiter, header and width from the file's first bytes; None when it holds no row."""
    lines = _sample_lines(sample, complete)
    if not lines:
        return None
    delimiter = _delimiter(lines)
    rows = _split(lines, delimiter)
    header = rows[0] if _has_header(rows) else None
    width = Counter(len(row) for row in rows[1:] or rows).most_common(1)[0][0]
    row_bytes = sum(len(line.encode()) + 1 for line in lines) / len(lines)
    return Dialect(delimiter, header, len(header) if header else width, row_bytes)


@dataclass
class _Shape:
    """Rows Arrow skipped for their number of fields: file row number -> (fields, text)."""

    expected: int
    expected_of: str
    skipped: dict[int, tuple[int, str]] = field(default_factory=dict)

    def handler(self, row: Any) -> str:
        self.skipped[row.number] = (row.actual_columns, row.text)
        return "skip"

    def labels(self, start: int, count: int) -> np.ndarray:
        """File row numbers of `count` good rows from `start` on, stepping over skipped rows."""
        candidates = np.arange(start, start + count + len(self.skipped))
        kept = candidates[~np.isin(candidates, np.fromiter(self.skipped, dtype="int64"))]
        return kept[:count]

    def take(self, up_to: int | None) -> list[tuple[int, str, str, Any]]:
        """Skipped rows up to a row number (all when None), as rejects."""
        numbers = sorted(n for n in self.skipped if up_to is None or n <= up_to)
        rejects = []
        for number in numbers:
            fields, text = self.skipped.pop(number)
            message = f"row {number} has {fields} fields, {self.expected_of} {self.expected}"
            rejects.append((number, "row_shape", message, text))
        return rejects


@FORMATS.register
class CsvFormat(FormatReader):
    """Delimited text, by suffix (.csv, .tsv, .psv, .tab) or a text file not starting like JSON."""

    name = "csv"

    def detect(self, value: Source) -> bool:
        return text_kind(value) == "csv"

    def tables(self, source: Source, *, batch_rows: int) -> Iterator[RawTable]:
        with decoding("CSV"):
            with source.open() as handle:
                sample = handle.read(SAMPLE_BYTES)
            dialect = sniff(sample, complete=len(sample) < SAMPLE_BYTES)
            if dialect is None:
                return
            with source.open() as handle:
                yield from self._tables(handle, dialect, batch_rows)

    def _tables(self, handle: Any, dialect: Dialect, batch_rows: int) -> Iterator[RawTable]:
        shape = _Shape(dialect.width, "the header's" if dialect.header is not None else "the file's rows")
        reader = _arrow_reader(handle, dialect, shape, batch_rows)
        first_row = 2 if dialect.header is not None else 1
        template: RawTable | None = None
        for table, last in with_last(rechunk(reader, batch_rows)):
            labels = shape.labels(first_row, table.num_rows)
            frame = arrow_frame(table, first_row, labels)
            first_row = int(labels[-1]) + 1
            raw = self._raw(frame, dialect, template)
            raw.rejected = shape.take(None if last else first_row - 1)
            template = template or raw
            yield raw
        if template is None:
            self._no_rows(shape, dialect)

    def _raw(self, frame: Any, dialect: Dialect, template: RawTable | None) -> RawTable:
        """The first batch decides the layout; later batches keep its mapping (warnings said once)."""
        if dialect.header is None:
            frame.columns = range(len(frame.columns))
        if template is not None:
            return RawTable(template.layout, frame, template.mapping, format=self.name)
        if dialect.header is None:
            check_width(len(frame.columns))
            table = positional_table(frame, "no-header")
        else:
            mapping, unused = map_fields(dialect.names)
            table = RawTable("header", frame, mapping)
            table.note_unused(unused)
        table.format = self.name
        return table

    @staticmethod
    def _no_rows(shape: _Shape, dialect: Dialect) -> None:
        """A file whose rows all had the wrong number of fields, or a header alone."""
        rejects = shape.take(None)
        if rejects:
            _, _, message, text = rejects[0]
            raise LandingFileError(
                f"no row has the {dialect.width} fields of the first rows; first: {message}: {text}"
            )


def _arrow_reader(handle: Any, dialect: Dialect, shape: _Shape, batch_rows: int) -> Any:
    names = dialect.names
    include = _needed_columns(dialect, names)
    block = int(min(max(dialect.row_bytes * batch_rows, _MIN_BLOCK), _MAX_BLOCK))
    return pa_csv.open_csv(
        handle,
        read_options=pa_csv.ReadOptions(
            column_names=names,
            skip_rows=1 if dialect.header is not None else 0,
            block_size=block,
            use_threads=False,  # row numbers of skipped rows are known only single-threaded
        ),
        parse_options=pa_csv.ParseOptions(delimiter=dialect.delimiter, invalid_row_handler=shape.handler),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            include_columns=include,
        ),
    )


def _needed_columns(dialect: Dialect, names: list[str]) -> list[str]:
    """With a header mapping every required field, only the mapped columns are converted; else all (the
    error then lists every column, and positional rows need theirs)."""
    if dialect.header is None:
        return []
    mapping, _ = map_fields(names)
    if not all(f in mapping for f in ("time", *PRICES)):
        return []
    return [name for name in names if name in mapping.values()]
