"""Readers of landed files, one per family, found through registries.

- `FORMATS` (name -> `FormatReader`): file formats, in detection order: Parquet, Feather / Arrow IPC (by
  magic number), JSON, CSV (by suffix or first character). Containers (gzip, zip) are unwrapped before, in
  `readers.containers`.
- `LAYOUTS` (name -> `Reader`): the JSON layout families; `find_table` walks a JSON document's wrappers to
  the rows and lets the registry pick the reader.

What readers share (field names, typing, rejects, the exchange/symbol/interval of the rows) is not here but
in `resources.files.fields`, `.values` and `.canonical`. Adding a format is one module registering a
`FormatReader` (imported below) plus its sample in tests/test_landing_readers.py.
"""

from market_warehouse.resources.files.readers import columnar, csv_format, json_format  # noqa: F401 - register the formats
from market_warehouse.resources.files.readers.base import (
    FORMATS,
    FormatReader,
    RawTable,
    ReadContext,
    Reader,
    Registry,
    with_last,
)
from market_warehouse.resources.files.readers.json_layouts import LAYOUTS, find_table

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "FormatReader",
    "RawTable",
    "ReadContext",
    "Reader",
    "Registry",
    "find_table",
    "with_last",
]
