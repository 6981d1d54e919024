"""What every reader hands on, the reader interface and the name -> reader registry.

A reader knows one family of files (a JSON layout; in time CSV, Parquet, Arrow): it says whether a value
is of its family (`detect`) and reads it into a `RawTable`, the rows as found with a mapping of canonical
field -> column. Everything after that (typing numbers and times, rejecting rows, resolving the exchange,
symbol and interval, checking the interval) is shared, in `resources.files.canonical`, so adding a family
is one class here plus its test, as freqtrade adds a data handler behind `IDataHandler`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd


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


class Reader(ABC):
    """One family of layouts: `detect` must be cheap and say yes to its family only."""

    name: ClassVar[str]

    @abstractmethod
    def detect(self, value: Any) -> bool:
        """True when `value` is of this reader's family."""

    @abstractmethod
    def read(self, value: Any, context: ReadContext) -> RawTable | None:
        """The raw table of `value` (None when it holds no rows); `LandingFileError` when unreadable."""


R = TypeVar("R", bound=Reader)


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
