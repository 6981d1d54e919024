"""Checksum sidecars beside landed files: Binance Vision publishes `<file>.CHECKSUM` next to each archive,
in `sha256sum` format (`<64 hex digits>  <file name>`). A download cut short or corrupted is then told
before any of its rows is written: the file fails with the two digests in its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

_SIDECARS = (".CHECKSUM", ".checksum", ".sha256", ".SHA256")
_LINE = re.compile(r"^\s*(?P<digest>[0-9a-fA-F]{64})\s+\*?(?P<name>.+?)\s*$")


def sidecar(path: Path) -> Path | None:
    """The checksum file beside `path`, if there is one."""
    for suffix in _SIDECARS:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def expected_sha256(checksum_file: Path, name: str) -> str:
    """The digest the sidecar gives for `name`; `ValueError` naming the sidecar when it gives none."""
    text = checksum_file.read_text(encoding="utf-8", errors="replace")
    lines = [m for m in map(_LINE.match, text.splitlines()) if m]
    for match in lines:
        if Path(match.group("name")).name == name:
            return match.group("digest").lower()
    if len(lines) == 1:  # one digest, named otherwise (a renamed download): it is this file's
        return lines[0].group("digest").lower()
    raise ValueError(f"{checksum_file.name}: no sha256 line for {name!r} (expected '<64 hex>  {name}')")


def checksum_problem(path: Path, sha256: str) -> str | None:
    """Why the file does not match its sidecar, or None (no sidecar, or it matches)."""
    found = sidecar(path)
    if found is None:
        return None
    try:
        expected = expected_sha256(found, path.name)
    except (OSError, ValueError) as exc:
        return f"checksum file unreadable: {exc}"
    if expected != sha256.lower():
        return (
            f"checksum mismatch: {found.name} says sha256 {expected}, the file's is {sha256}; "
            "download it again (nothing was written)"
        )
    return None
