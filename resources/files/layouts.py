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

from resources.files import LandingFileError
from resources.files.canonical import FileState, ParsedFile, canonicalize, empty_file, single_value
from resources.files.fields import CANONICAL, OPTIONAL, PRICES
from resources.files.naming import PathNames, names_from_path
from resources.files.readers import FORMATS, FormatReader, RawTable, with_last
from resources.files.readers.containers import Source, binary_kind, open_sources

__all__ = ["CANONICAL", "DEFAULT_BATCH_ROWS", "OPTIONAL", "PRICES", "ParsedFile", "parse_file", "read_file"]

DEFAULT_BATCH_ROWS = 50_000
_CONVERT_ADVICE = {
    "an HDF5 file": "convert it to Feather or Parquet (freqtrade: `freqtrade convert-data --format-from "
    "hdf5 --format-to feather`)",
}


def _relative(path: Path, relative_to: Path | None) -> str:
    return path.relative_to(relative_to).as_posix() if relative_to is not None else path.name


def _refuse_what_is_not_spot_candles(names: PathNames, relative: str) -> None:
    """Futures candles stored as spot would be wrong silently: they wait for the instruments model, which
    maps a file to its instrument (perpetual, dated future, mark/index price). Trades files (freqtrade's
    JSON trades are bare arrays, which would otherwise be misread as candles) wait for the trades loader."""
    if names.derivative is not None:
        raise LandingFileError(
            f"{relative}: futures data ({names.derivative}) needs the instruments model; not loaded"
        )
    if names.trades:
        raise LandingFileError(
            f"{relative}: a trades file (freqtrade's <PAIR>-trades name): only candle files are loaded"
        )


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
    """One landed file as canonical candles, one `ParsedFile` per batch of at most about `batch_rows` rows.

    Names missing from the content come from the path relative to `relative_to`. A file without rows gives
    one empty `ParsedFile`. `LandingFileError` may come with any batch: the caller decides what the
    batches already read are worth (the landing loader has stored them, and says so).
    """
    relative = _relative(path, relative_to)
    _refuse_what_is_not_spot_candles(names_from_path(relative), relative)
    state = FileState()
    produced = False
    for source in open_sources(path, relative):
        reader = _format_of(source)
        names = names_from_path(source.name)
        tables = with_last(reader.tables(source, batch_rows=batch_rows))
        for raw, last in tables:
            produced = True
            yield _canonical(raw, names, source, state, default_timezone, last=last)
        if not produced:  # a stream without rows
            produced = True
            yield empty_file("empty", format=reader.name, container=source.container)
    if not produced:  # a zip without data members
        yield empty_file("empty", container="zip")


def _canonical(
    raw: RawTable,
    names: PathNames,
    source: Source,
    state: FileState,
    default_timezone: str | None,
    *,
    last: bool,
) -> ParsedFile:
    if raw.frame.empty and not raw.rejected:
        return empty_file(raw.layout, format=raw.format, container=source.container)
    raw.location = source.location
    parsed = canonicalize(raw, names, default_timezone=default_timezone, state=state, last=last)
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
    )
    for name in ("exchange", "symbol", "interval"):
        setattr(combined, name, single_value(frame[name]))
    return combined
