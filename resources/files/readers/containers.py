"""Containers around a landed file's content: gzip, told by its magic number whatever the name says."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from resources.files import LandingFileError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when they start with gzip's magic number (whatever the name says)."""
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error) as exc:
        raise LandingFileError(f"corrupt gzip data: {exc}") from None
