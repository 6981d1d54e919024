"""Landed candle files -> canonical OHLCV frames: the entry points `read_file` (in batches) and `parse_file`.

Files come from exchange APIs (Binance klines, Kraken, Bybit, OKX, Polygon/Alpaca bars), pandas `to_json`
in any orient, freqtrade's data folders (Feather, Parquet, JSON), Binance's CSV dumps or ad-hoc exports:
JSON or NDJSON, CSV with or without a header, Parquet, Feather / Arrow IPC; plain, gzipped or in a zip
archive. Containers and binary formats are told by their magic numbers, text formats by their suffix or
first character; the rows' layout by their content. What was found is reported (`ParsedFile.description`,
e.g. 'zip:csv:binance-klines') so a surprising result can be traced.

Where things are:
- `resources.files.readers`: the readers, one per format family (`FORMATS`) and, within JSON, one per
  layout family (`LAYOUTS`); containers (gzip, zip) in `readers/containers.py`;
- `resources.files.fields`: canonical field names and their aliases;
- `resources.files.canonical`: what every reader shares, raw rows -> typed candles + rejected rows.

Rows that cannot be read (a price that is not a number, a time of another unit than the file's) are
returned in `rejected` with a rule and a message naming the row, for quarantine; the file as a whole fails
(`LandingFileError`) only when its shape is not understood or no row at all can be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.archives import OHLCV, TRADES, FileKind, identify
from market_warehouse.resources.files.canonical import (
    FileState,
    ParsedFile,
    canonicalize,
    empty_file,
    single_value,
)
from market_warehouse.resources.files.fields import (
    CANONICAL,
    INDEX_COLUMN,
    OPTIONAL,
    PRICES,
    looks_like_trades,
    ohlc_count,
)
from market_warehouse.resources.files.naming import PathNames, names_from_path
from market_warehouse.resources.files.readers import FORMATS, FormatReader, RawTable, with_last
from market_warehouse.resources.files.readers.containers import Source, binary_kind, open_sources
from market_warehouse.resources.files.records import canonical_records, empty_records

__all__ = ["CANONICAL", "DEFAULT_BATCH_ROWS", "OPTIONAL", "PRICES", "ParsedFile", "parse_file", "read_file"]

DEFAULT_BATCH_ROWS = 50_000
_CONVERT_ADVICE = {
    "an HDF5 file": "convert it to Feather or Parquet (freqtrade: `freqtrade convert-data --format-from "
    "hdf5 --format-to feather`)",
}


def _relative(path: Path, relative_to: Path | None) -> str:
    return path.relative_to(relative_to).as_posix() if relative_to is not None else path.name


def _refuse_unknown_derivatives(names: PathNames, relative: str) -> None:
    """Futures data whose instrument the path cannot tell (not freqtrade's nor Binance Vision's layout)
    would be stored as the spot pair: refused, with the names that work."""
    if names.derivative is not None:
        raise LandingFileError(
            f"{relative}: futures data ({names.derivative}) whose instrument cannot be told from the path: "
            "use freqtrade's layout (<exchange>/futures/<BASE_QUOTE_SETTLE>-<tf>[-<candle type>].<ext>) or "
            "Binance Vision's (data/futures/um|cm/...)"
        )


def _names_of(kind: FileKind) -> PathNames:
    """What a known layout's path says, as the generic naming would say it."""
    return PathNames(exchange=kind.exchange, symbol=kind.symbol, interval=kind.interval)


def _dataset_of(kind: FileKind | None, names: PathNames, raw: RawTable) -> str:
    """The dataset of a file: its known layout's, else told by its name (freqtrade's `-trades`) or its
    columns (a price and an amount but no open/high/low/close: single trades)."""
    if kind is not None:
        return kind.dataset
    columns = [c for c in raw.frame.columns if c != INDEX_COLUMN]
    if names.trades or (looks_like_trades(columns) and ohlc_count(columns) < 4):
        return TRADES
    return OHLCV


def _format_of(source: Source) -> FormatReader:
    reader = FORMATS.detect(source)
    if reader is not None:
        return reader
    what = binary_kind(source.head) or "of an unknown binary format"
    advice = _CONVERT_ADVICE.get(
        what, "decompress or convert it (gzip and zip archives are read as they are)"
    )
    raise LandingFileError(f"not a format read here: the content is {what}; {advice}")


def read_file(
    path: Path,
    *,
    relative_to: Path | None = None,
    default_timezone: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[ParsedFile]:
    """One landed file as canonical rows of its dataset (candles, trades or funding rates), one
    `ParsedFile` per batch of at most about `batch_rows` rows.

    A known layout (`resources.files.archives`: freqtrade, Binance Vision, Tardis) tells the dataset,
    instrument and price kind from the path; other files are candles named by the generic naming unless
    their columns are trades. A file without rows gives one empty `ParsedFile`. `LandingFileError` may
    come with any batch: the caller decides what the batches already read are worth (the landing loader
    has stored them, and says so).
    """
    relative = _relative(path, relative_to)
    kind = identify(path)
    if kind is None:
        _refuse_unknown_derivatives(names_from_path(relative), relative)
    state = FileState()
    produced = False
    dataset: str | None = None
    for source in open_sources(path, relative):
        reader = _format_of(source)
        names = _names_of(kind) if kind is not None else names_from_path(source.name)
        tables = with_last(reader.tables(source, batch_rows=batch_rows))
        for raw, last in tables:
            produced = True
            dataset = dataset or _dataset_of(kind, names, raw)
            batch = _canonical(
                raw, names, source, state, default_timezone, last=last, dataset=dataset, kind=kind
            )
            yield _with_kind(batch, kind)
        if not produced:  # a stream without rows
            produced = True
            yield _with_kind(_empty(kind, reader.name, source.container), kind)
    if not produced:  # a zip without data members
        yield _with_kind(_empty(kind, "json", "zip"), kind)


def _empty(kind: FileKind | None, format: str, container: str | None) -> ParsedFile:
    if kind is not None and kind.dataset != OHLCV:
        return empty_records(kind.dataset, "empty", format=format, container=container)
    return empty_file("empty", format=format, container=container)


def _with_kind(parsed: ParsedFile, kind: FileKind | None) -> ParsedFile:
    """The known layout and price kind on the batch; candles of another price than trade carry it in a
    `price` column (the candle key's price kind)."""
    if kind is None:
        return parsed
    parsed.archive = kind.description
    if parsed.dataset == OHLCV:
        parsed.price = kind.price
        if kind.price not in (None, "trade") and not parsed.empty:
            parsed.frame = parsed.frame.assign(price=kind.price)
            parsed.rejected = parsed.rejected.assign(price=kind.price)
    return parsed


def _canonical(
    raw: RawTable,
    names: PathNames,
    source: Source,
    state: FileState,
    default_timezone: str | None,
    *,
    last: bool,
    dataset: str,
    kind: FileKind | None,
) -> ParsedFile:
    if raw.frame.empty and not raw.rejected:
        if dataset != OHLCV:
            return empty_records(dataset, raw.layout, format=raw.format, container=source.container)
        return empty_file(raw.layout, format=raw.format, container=source.container)
    raw.location = source.location
    if dataset == OHLCV:
        parsed = canonicalize(raw, names, default_timezone=default_timezone, state=state, last=last)
    else:
        parsed = canonical_records(raw, dataset, kind, names, state=state, default_timezone=default_timezone)
    parsed.container = source.container
    return parsed


def parse_file(
    path: Path,
    *,
    relative_to: Path | None = None,
    default_timezone: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ParsedFile:
    """One landed file read whole: the batches of `read_file` in one `ParsedFile` (tests, benchmarks)."""
    batches = list(
        read_file(path, relative_to=relative_to, default_timezone=default_timezone, batch_rows=batch_rows)
    )
    return batches[0] if len(batches) == 1 else combine(batches)


def combine(batches: list[ParsedFile]) -> ParsedFile:
    """Batches of one file as one `ParsedFile`: rows concatenated, warnings once each, the first batch's
    layout (a zip of members of several layouts shows its first)."""
    rows = [b for b in batches if not b.empty] or batches[:1]
    first = rows[0]
    frame = pd.concat([b.frame for b in rows])
    combined = ParsedFile(
        layout=first.layout,
        time_unit=first.time_unit,
        frame=frame,
        rejected=pd.concat([b.rejected for b in rows]),
        rejected_rule=pd.concat([b.rejected_rule for b in rows]),
        rejected_message=pd.concat([b.rejected_message for b in rows]),
        wrapper=first.wrapper,
        container=first.container,
        warnings=list(dict.fromkeys(w for b in rows for w in b.warnings)),
        format=first.format,
        dataset=first.dataset,
        price=first.price,
        archive=first.archive,
    )
    for name in ("exchange", "symbol", "interval"):
        if name in frame.columns:
            setattr(combined, name, single_value(frame[name]))
    return combined
