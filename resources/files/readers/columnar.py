"""Parquet and Feather / Arrow IPC candles: typed columns, read in record batches.

freqtrade writes its candles as Feather by default (`date` timestamp[ns, UTC], `open`, `high`, `low`,
`close`, `volume` float64, LZ4-compressed, one record batch per file) or Parquet with the same columns; the
field aliases map those names like any other, so no freqtrade-specific code is needed here.

Memory: Parquet is decoded row group by row group (`iter_batches`), only the mapped columns when every
required field is mapped. An Arrow IPC file is memory-mapped and read batch by batch; a compressed batch
is decompressed whole (freqtrade's files are a single LZ4 batch, so the whole file's columns are in memory
once), then cut into `batch_rows` slices without copying. A stream inside gzip or a zip member is first
copied to a temporary file, since both formats need random access.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from market_warehouse.resources.files.fields import PRICES, map_fields
from market_warehouse.resources.files.readers.arrow import arrow_frame, decoding, rechunk
from market_warehouse.resources.files.readers.base import FORMATS, FormatReader, RawTable
from market_warehouse.resources.files.readers.containers import Source

_ARROW_FILE, _FEATHER_V1, _STREAM = b"ARROW1", b"FEA1", b"\xff\xff\xff\xff"
_ARROW_SUFFIXES = frozenset({".arrow", ".arrows", ".ipc", ".feather", ".fea"})


def _selected(names: list[str]) -> tuple[dict, list[str], list[str] | None]:
    """Mapping of the schema's names, unused names, and the columns to decode (None: all, so that an
    error about a missing field lists every column)."""
    mapping, unused = map_fields(names)
    complete = all(f in mapping for f in ("time", *PRICES))
    return mapping, unused, [n for n in names if n in mapping.values()] if complete else None


def _tables(
    fmt: str, layout: str, names: list[str], batches: Iterable[pa.RecordBatch], batch_rows: int
) -> Iterator[RawTable]:
    """Rows of the batches as raw tables of `batch_rows` rows, numbered from 1, columns mapped by name."""
    mapping, unused, columns = _selected(names)
    first_row = 1
    for table in rechunk(batches, batch_rows):
        if columns is not None:
            table = table.select(columns)
        raw = RawTable(layout, arrow_frame(table, first_row), mapping, format=fmt)
        if first_row == 1:
            raw.note_unused(unused)
        first_row += table.num_rows
        yield raw


@FORMATS.register
class ParquetFormat(FormatReader):
    """Apache Parquet, by its magic number 'PAR1'."""

    name = "parquet"

    def detect(self, value: Source) -> bool:
        return value.head.startswith(b"PAR1")

    def tables(self, source: Source, *, batch_rows: int) -> Iterator[RawTable]:
        with decoding("Parquet"), source.local_path() as path:
            parquet = pq.ParquetFile(path, memory_map=True)
            names = parquet.schema_arrow.names
            _, _, columns = _selected(names)
            batches = parquet.iter_batches(batch_size=max(1, batch_rows), columns=columns)
            yield from _tables(self.name, self.name, names, batches, batch_rows)


@FORMATS.register
class FeatherFormat(FormatReader):
    """Feather v2 = Arrow IPC file ('ARROW1'), Feather v1 ('FEA1'), and Arrow IPC streams named .arrow(s),
    .ipc or .feather."""

    name = "feather"

    def detect(self, value: Source) -> bool:
        head = value.head
        if head.startswith((_ARROW_FILE, _FEATHER_V1)):
            return True
        return head.startswith(_STREAM) and bool(set(value.suffixes) & _ARROW_SUFFIXES)

    def tables(self, source: Source, *, batch_rows: int) -> Iterator[RawTable]:
        with decoding("Feather/Arrow"):
            if source.head.startswith(_STREAM):
                with source.open() as handle:
                    reader = ipc.open_stream(handle)
                    yield from _tables(self.name, "arrow-stream", reader.schema.names, reader, batch_rows)
                return
            with source.local_path() as path:
                if source.head.startswith(_FEATHER_V1):
                    table = feather.read_table(path, memory_map=True)  # v1 has no batches to stream
                    yield from _tables(
                        self.name, "feather-v1", table.column_names, table.to_batches(), batch_rows
                    )
                    return
                with pa.memory_map(str(path)) as mapped:
                    reader = ipc.open_file(mapped)
                    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                    yield from _tables(self.name, self.name, reader.schema.names, batches, batch_rows)
