"""Containers around a landed file's content: gzip and zip, told by their magic numbers whatever the name.

`open_sources` turns one landed file into the streams a format reader reads (`Source`): the file itself,
its gunzipped content, or each data member of a zip archive (a Binance Vision monthly zip holds one CSV,
an export may hold several files of any format). Nothing is unpacked whole into memory: a reader opens a
stream, and one that needs random access (Parquet, Arrow files) gets a memory-mapped path, a compressed
member being spooled to a temporary file first.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from market_warehouse.resources.files import LandingFileError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
HEAD_BYTES = 64
BOM = b"\xef\xbb\xbf"
# Binary formats by magic number: to tell text from binary, and to name what cannot be read.
MAGIC = {
    b"PAR1": "a Parquet file",
    b"ARROW1": "an Arrow IPC (Feather) file",
    b"FEA1": "a Feather v1 file",
    b"\x89HDF\r\n\x1a\n": "an HDF5 file",
    b"BZh": "a bzip2 file",
    b"\xfd7zXZ\x00": "an xz file",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
    b"\x28\xb5\x2f\xfd": "a zstd file",
    ZIP_MAGIC: "a zip archive",
}
JSON_SUFFIXES = frozenset({".json", ".ndjson", ".jsonl"})
CSV_SUFFIXES = frozenset({".csv", ".tsv", ".psv", ".tab"})
_GZIP_ERRORS = (OSError, EOFError, zlib.error)
# Checksums beside data files (Binance Vision's X.zip.CHECKSUM): about a file, not data themselves.
SIDECAR_SUFFIXES = (".checksum", ".sha256", ".md5")


@dataclass
class Source:
    """One stream of file content: a plain file, a gunzipped file or a zip member."""

    name: str  # path relative to the landing folder; a zip member as <zip path without .zip>/<member>
    opener: Callable[[], IO[bytes]]
    head: bytes  # the first bytes of the content (after decompression): magic numbers, first text
    container: str | None = None  # None, 'gzip' or 'zip'
    location: str | None = None  # the zip member, named in row messages
    path: Path | None = None  # the plain file on disk, when there is one (memory-mappable)

    @property
    def suffixes(self) -> list[str]:
        """Lower-case suffixes of the name without a trailing '.gz' ('x.csv.gz' -> ['.csv'])."""
        suffixes = [s.lower() for s in PurePosixPath(self.name).suffixes]
        return suffixes[:-1] if suffixes and suffixes[-1] in {".gz", ".gzip"} else suffixes

    def open(self) -> IO[bytes]:
        return self.opener()

    def read_all(self) -> bytes:
        """The whole content: for formats that cannot be read in pieces (one JSON document)."""
        with self.open() as handle:
            return _read(handle, self.container)

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        """A path to the content on disk: the file itself, or a temporary copy of a compressed stream."""
        if self.path is not None:
            yield self.path
            return
        with tempfile.NamedTemporaryFile(prefix="mw-landed-", suffix=PurePosixPath(self.name).suffix) as tmp:
            with self.open() as handle:
                _copy(handle, tmp, self.container)
            tmp.flush()
            yield Path(tmp.name)


def binary_kind(head: bytes) -> str | None:
    """What a binary file is, by its magic number; None for text (or an unknown binary)."""
    return next((what for magic, what in MAGIC.items() if head.startswith(magic)), None)


def text_kind(source: Source) -> str | None:
    """'json' or 'csv' for a text stream: the name's suffix says, else the first character does
    ('[' or '{' is JSON); None for a binary format."""
    if binary_kind(source.head) is not None:
        return None
    suffix = source.suffixes[-1] if source.suffixes else ""
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in CSV_SUFFIXES:
        return "csv"
    first = source.head.removeprefix(BOM).lstrip()[:1]
    return "json" if first in (b"[", b"{", b"") else "csv"


def _read(handle: IO[bytes], container: str | None) -> bytes:
    try:
        return handle.read()
    except _GZIP_ERRORS as exc:
        raise LandingFileError(f"corrupt {container or 'file'} data: {exc}") from None


def _copy(handle: IO[bytes], target: IO[bytes], container: str | None) -> None:
    try:
        shutil.copyfileobj(handle, target, 1 << 20)
    except _GZIP_ERRORS as exc:
        raise LandingFileError(f"corrupt {container or 'file'} data: {exc}") from None


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when they start with gzip's magic number (whatever the name says)."""
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except _GZIP_ERRORS as exc:
        raise LandingFileError(f"corrupt gzip data: {exc}") from None


def _head(opener: Callable[[], IO[bytes]], container: str | None) -> bytes:
    with opener() as handle:
        try:
            return handle.read(HEAD_BYTES)
        except _GZIP_ERRORS as exc:
            raise LandingFileError(f"corrupt {container} data: {exc}") from None


def _gunzipped(opener: Callable[[], IO[bytes]]) -> Callable[[], IO[bytes]]:
    return lambda: gzip.open(opener(), "rb")


def open_sources(path: Path, name: str) -> Iterator[Source]:
    """The content streams of a landed file named `name` (its path relative to the landing folder)."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        yield from _zip_members(path, name)
        return
    plain = lambda: path.open("rb")  # noqa: E731 - a named opener reads worse than this
    if magic[:2] == GZIP_MAGIC:
        opener = _gunzipped(plain)
        yield Source(name, opener, _head(opener, "gzip"), container="gzip")
        return
    yield Source(name, plain, _head(plain, None), path=path)


def _is_data_member(info: zipfile.ZipInfo) -> bool:
    """Not a folder, a macOS resource fork, a hidden file or a checksum."""
    parts = PurePosixPath(info.filename).parts
    if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return False
    return not info.filename.lower().endswith(SIDECAR_SUFFIXES)


def _zip_members(path: Path, name: str) -> Iterator[Source]:
    """Each data member of a zip archive, in name order; a zip inside the zip is refused."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise LandingFileError(f"corrupt zip archive: {exc}") from None
    stem = name[: -len(".zip")] if name.lower().endswith(".zip") else name
    with archive:
        for info in sorted(filter(_is_data_member, archive.infolist()), key=lambda i: i.filename):
            yield _member(archive, info, f"{stem}/{info.filename}")


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Source:
    def opener() -> IO[bytes]:
        return archive.open(info)

    try:
        head = _head(opener, "zip")
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise LandingFileError(f"zip member {info.filename}: cannot be read: {exc}") from None
    if head[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        raise LandingFileError(f"zip member {info.filename} is itself a zip archive: unpack it first")
    if head[:2] == GZIP_MAGIC:
        gunzip = _gunzipped(opener)
        return Source(name, gunzip, _head(gunzip, "gzip"), container="zip", location=info.filename)
    return Source(name, opener, head, container="zip", location=info.filename)
