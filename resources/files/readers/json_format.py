"""The JSON format: one document (or NDJSON) decoded whole, its rows found by the layout readers.

A JSON array cannot be cut into batches without a streaming parser, so a JSON file is one batch: its
memory is its decoded size. Large histories belong in CSV, Parquet or Feather, which are read in batches.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pandas as pd

from resources.files import LandingFileError
from resources.files.readers.base import FORMATS, FormatReader, RawTable
from resources.files.readers.containers import BOM, Source, text_kind
from resources.files.readers.json_document import NdjsonLines, load_document
from resources.files.readers.json_layouts import find_table


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
