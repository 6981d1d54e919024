"""Bytes -> a JSON document: one value, or NDJSON (one value per line, a broken line kept as its error).

orjson reads the common case fast; the standard library is the fallback for NaN / Infinity (which Python's
`json.dumps` writes) and for error messages that say where the text broke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.readers.containers import BOM


@dataclass
class NdjsonLines:
    """An NDJSON document: (line number, value or the exception of a line that is not JSON)."""

    lines: list[tuple[int, Any]]


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    return json.loads(data.decode("utf-8"))


def _split_lines(data: bytes) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def load_document(data: bytes) -> Any:
    """The JSON value of `data`, `NdjsonLines` for NDJSON, None for no content; `LandingFileError` else."""
    data = data.removeprefix(BOM)
    if not data.strip():
        return None
    try:
        return parse_json(data)
    except UnicodeDecodeError as exc:
        raise LandingFileError(f"not UTF-8 text (byte {exc.start}): not a JSON file") from None
    except json.JSONDecodeError as exc:
        whole_error = exc
    lines = _split_lines(data)
    if len(lines) < 2 or not _parses(lines[0][1]):
        raise LandingFileError(
            f"invalid JSON at line {whole_error.lineno} column {whole_error.colno}: {whole_error.msg}"
        )
    return NdjsonLines(parse_lines(lines))


def _parses(line: bytes) -> bool:
    try:
        parse_json(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def parse_lines(lines: list[tuple[int, bytes]]) -> list[tuple[int, Any]]:
    try:  # fast path: every line is valid JSON orjson reads
        return [(number, orjson.loads(line)) for number, line in lines]
    except orjson.JSONDecodeError:
        pass
    values: list[tuple[int, Any]] = []
    for number, line in lines:
        try:
            values.append((number, parse_json(line)))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            exc.line_text = line.decode("utf-8", errors="replace")  # kept for the quarantine message
            values.append((number, exc))
    return values
