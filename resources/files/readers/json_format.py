"""The JSON format: NDJSON and large flat arrays in bounded batches (`json_stream`), any other document
decoded whole, its rows found by the layout readers.

A document that is not a flat top-level array (a wrapper such as `{"data": [...]}`, a pandas orient) is
one batch: its memory is its decoded size. Large histories belong in NDJSON, CSV, Parquet or Feather.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Iterator

import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.readers.base import FORMATS, FormatReader, RawTable
from market_warehouse.resources.files.readers.containers import BOM, Source, text_kind
from market_warehouse.resources.files.readers.json_document import NdjsonLines, load_document
from market_warehouse.resources.files.readers.json_layouts import find_table
from market_warehouse.resources.files.readers.json_stream import (
    NotStreamable,
    array_tables,
    is_ndjson,
    ndjson_tables,
    should_stream_array,
)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Decoding allocates millions of lists and dicts, none in a cycle: the cyclic GC's passes over them
    (triggered by the allocation count) are pure cost, about half of the decoding time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _or_empty(tables: Iterator[RawTable], layout: str) -> Iterator[RawTable]:
    """The tables, or one empty table of `layout` when there is none."""
    produced = False
    for table in tables:
        produced = True
        yield table
    if not produced:
        yield RawTable(layout=layout, frame=pd.DataFrame(), mapping={})


def _looks_like_csv(head: bytes) -> bool:
    line = head.removeprefix(BOM).lstrip().split(b"\n", 1)[0]
    return not line.startswith((b"[", b"{")) and any(d in line for d in (b",", b";", b"\t"))


@FORMATS.register
class JsonFormat(FormatReader):
    """JSON documents and NDJSON, by suffix (.json, .ndjson, .jsonl) or a first '[' or '{'."""

    name = "json"

    def detect(self, value: Source) -> bool:
        return text_kind(value) == "json"

    def tables(self, source: Source, *, batch_rows: int) -> Iterator[RawTable]:
        streamed = self._streamed(source, batch_rows)
        if streamed is not None:
            with collector_paused():
                yield from streamed
            return
        yield from self._document(source)

    @staticmethod
    def _streamed(source: Source, batch_rows: int) -> Iterator[RawTable] | None:
        """NDJSON lines or a large flat array in bounded batches (`json_stream`); None: read it whole."""
        if is_ndjson(source):
            return _or_empty(ndjson_tables(source, batch_rows), "ndjson-empty")
        if not should_stream_array(source):
            return None
        stream = array_tables(source, batch_rows)
        try:
            first = next(stream, None)
        except NotStreamable:
            return None
        return _or_empty(itertools.chain([first] if first is not None else [], stream), "empty")

    def _document(self, source: Source) -> Iterator[RawTable]:
        data = source.read_all()
        with collector_paused():
            try:
                document = load_document(data)
            except LandingFileError as exc:
                if _looks_like_csv(source.head):
                    raise LandingFileError(
                        f"{exc} (the content looks like CSV: name the file .csv)"
                    ) from None
                raise
            del data
            raw = find_table(document)
            empty = "ndjson-empty" if isinstance(document, NdjsonLines) else "empty"
            del document
        if raw is None or (raw.frame.empty and not raw.rejected):
            raw = RawTable(layout=empty, frame=pd.DataFrame(), mapping={})
        yield raw
