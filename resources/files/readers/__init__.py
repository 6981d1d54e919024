"""Readers of landed files, one per family behind `readers.base.Reader`, found through a registry.

`LAYOUTS` (name -> reader) holds the JSON layout families; `find_table` walks a JSON document's wrappers
to the rows and lets the registry pick the reader. What readers share (field names, typing, rejects, the
exchange/symbol/interval of the rows) is not here but in `resources.files.fields`, `.values` and
`.canonical`.
"""

from resources.files.readers.base import RawTable, ReadContext, Reader, Registry
from resources.files.readers.json_layouts import LAYOUTS, find_table

__all__ = ["LAYOUTS", "RawTable", "ReadContext", "Reader", "Registry", "find_table"]
