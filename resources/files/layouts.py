"""Historical JSON files of candles -> the canonical OHLCV frame: the entry point (`parse_file`).

Files come from exchange APIs (Binance klines, Kraken, Bybit, OKX, Polygon/Alpaca bars), from pandas
`to_json` in any orient, or from ad-hoc exports, plain or gzipped, one document or NDJSON. Nothing about the
layout is assumed from the file name: the content decides, and the layout found is reported so a surprising
result can be traced.

Where things are:
- `resources.files.readers`: the readers, one per layout family, and their registry (`LAYOUTS`); the
  layouts are listed in `readers/json_layouts.py`;
- `resources.files.fields`: canonical field names and their aliases;
- `resources.files.canonical`: what every reader shares, raw rows -> typed candles + rejected rows.

Rows that cannot be read (a price that is not a number, a time of another unit than the file's) are
returned in `rejected` with a rule and a message naming the row, for quarantine; the file as a whole fails
(`LandingFileError`) only when its shape is not understood or no row at all can be read.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

from resources.files.canonical import ParsedFile, canonicalize, empty_file
from resources.files.fields import CANONICAL, OPTIONAL, PRICES
from resources.files.naming import names_from_path
from resources.files.readers import find_table
from resources.files.readers.containers import read_bytes
from resources.files.readers.json_document import NdjsonLines, load_document

__all__ = ["CANONICAL", "OPTIONAL", "PRICES", "ParsedFile", "parse_file"]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Decoding allocates millions of lists and dicts, none in a cycle: the cyclic GC's passes over them
    (triggered by the allocation count) are pure cost, about half of the decoding time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_file(
    path: Path, *, relative_to: Path | None = None, default_timezone: str | None = None
) -> ParsedFile:
    """Read one landed file; names missing from its content come from its path relative to `relative_to`."""
    data, compressed = read_bytes(path)
    relative = path.relative_to(relative_to).as_posix() if relative_to is not None else path.name
    names = names_from_path(relative)
    with _collector_paused():
        document = load_document(data)
        raw = find_table(document)
        ndjson = isinstance(document, NdjsonLines)
        del document
    if raw is None or (raw.frame.empty and not raw.rejected):
        return empty_file("ndjson-empty" if ndjson else "empty", compressed=compressed)
    parsed = canonicalize(raw, names, default_timezone=default_timezone)
    parsed.compressed = compressed
    return parsed
