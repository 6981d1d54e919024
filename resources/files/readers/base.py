"""What every reader hands on, the reader interfaces and the name -> reader registry.

Two levels, each a small class per family behind one interface, as freqtrade's data handlers sit behind
`IDataHandler`:
- a `FormatReader` knows one file format (JSON, CSV, Parquet, Arrow/Feather): it says whether a content
  stream is of its format (`detect`, on the name and first bytes) and reads it into `RawTable`s, in
  bounded batches where the format allows;
- a `Reader` knows one JSON layout family (records, pandas orients, arrays, NDJSON): JSON needs a second
  level because one format holds many shapes of rows.
A `RawTable` is the rows as found with a mapping of canonical field -> column. Everything after that
(typing numbers and times, rejecting rows, resolving the exchange, symbol and interval, checking the
interval) is shared, in `resources.files.canonical`, so adding a family is one class plus its test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd

from market_warehouse.resources.files.readers.containers import Source


@dataclass
class RawTable:
    """Rows as found, before typing: columns are field names, or positions for positional layouts."""

    layout: str
    frame: pd.DataFrame  # index = row number in the file (line for line-based formats)
    mapping: dict[str, Any]  # canonical field -> column of `frame`
    meta: dict[str, Any] = field(default_factory=dict)  # exchange/symbol/interval/timezone of a wrapper
    wrapper: tuple[str, ...] = ()
    symbol_hint: str | None = None  # a key the rows were found under (Kraken: the pair)
    rejected: list[tuple[int, str, str, Any]] = field(default_factory=list)  # (row, rule, message, raw)
    warnings: list[str] = field(default_factory=list)
    format: str = "json"  # the FormatReader that read it
    location: str | None = None  # the zip member the rows come from, named in row messages

    def note_unused(self, unused: list[str]) -> None:
        """Say which source fields are not loaded: a surprising reading is then visible in the report."""
        if unused:
            shown = ", ".join(unused[:10]) + (", ..." if len(unused) > 10 else "")
            self.warnings.append(f"fields not loaded: {shown}")


@dataclass(frozen=True)
class ReadContext:
    """Where the rows were found: the wrappers passed on the way, their meta fields, the pair key."""

    meta: dict[str, Any] = field(default_factory=dict)
    wrapper: tuple[str, ...] = ()
    hint: str | None = None

    def inside(self, key: str, meta: dict[str, Any], *, hint: str | None) -> ReadContext:
        """The context one wrapper level down (under `key`)."""
        return replace(self, meta=meta, wrapper=(*self.wrapper, key), hint=hint)

    def attach(self, table: RawTable | None) -> RawTable | None:
        """Give a table read in this context its wrapper, meta fields and pair hint."""
        if table is not None:
            table.meta = {**self.meta, **table.meta}
            table.wrapper = self.wrapper
            table.symbol_hint = self.hint
        return table


class Detector(ABC):
    """A family of inputs with a name: `detect` must be cheap and say yes to its family only."""

    name: ClassVar[str]

    @abstractmethod
    def detect(self, value: Any) -> bool:
        """True when `value` is of this reader's family."""


class Reader(Detector):
    """One family of JSON layouts."""

    @abstractmethod
    def read(self, value: Any, context: ReadContext) -> RawTable | None:
        """The raw table of `value` (None when it holds no rows); `LandingFileError` when unreadable."""


class FormatReader(Detector):
    """One file format: `detect` sees a `Source` (its name and first bytes), `tables` reads it."""

    @abstractmethod
    def detect(self, value: Source) -> bool:
        """True when the content stream is of this format."""

    @abstractmethod
    def tables(self, source: Source, *, batch_rows: int) -> Iterator[RawTable]:
        """The rows of the stream, at most about `batch_rows` per table, numbered across the stream."""


R = TypeVar("R", bound=Detector)


class Registry(Generic[R]):
    """Readers by name, in detection order (the order they were registered in)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._readers: dict[str, R] = {}

    def register(self, cls: type[R]) -> type[R]:
        """Class decorator: one instance per reader class, under its `name`."""
        if cls.name in self._readers:
            raise ValueError(f"two {self.kind} readers named {cls.name!r}")
        self._readers[cls.name] = cls()
        return cls

    def __getitem__(self, name: str) -> R:
        try:
            return self._readers[name]
        except KeyError:
            raise KeyError(f"no {self.kind} reader named {name!r} (known: {', '.join(self)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def detect(self, value: Any) -> R | None:
        """The first reader (in registration order) whose family `value` is of."""
        return next((r for r in self._readers.values() if r.detect(value)), None)

    def detecting(self, value: Any) -> list[str]:
        """Every reader that says yes to `value`: a well-formed registry has at most one."""
        return [name for name, r in self._readers.items() if r.detect(value)]


FORMATS: Registry[FormatReader] = Registry("file format")

T = TypeVar("T")


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item with whether it is the last one (looking one item ahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True
