"""The universe YAML file: which file, and its parsed document, shared by the sections that live in it.

The file holds the exchanges to pull (`resources.exchanges.universe` validates them) and other sections
such as `maintenance:` (`resources.maintenance.policy`). Finding and reading it sits here, below both, so
maintenance reads its section without importing the sources layer, and an edit of the file is seen at
once by both (read cached by modification time).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from market_warehouse.resources.settings import ConfigurationError

DEFAULT_UNIVERSE = Path(__file__).resolve().parent / "exchanges" / "universe.yaml"
UNIVERSE_ENV = "MW_UNIVERSE"


def universe_path(path: str | os.PathLike | None = None) -> Path:
    """The file to read: an explicit path, else `MW_UNIVERSE`, else the shipped demo universe."""
    chosen = path or os.environ.get(UNIVERSE_ENV) or DEFAULT_UNIVERSE
    return Path(chosen).expanduser().resolve()


def file_version(path: Path) -> int:
    """Modification time in ns (0 for a missing file): the cache key that makes an edit take effect."""
    return path.stat().st_mtime_ns if path.is_file() else 0


def read_document(path: Path, version: int) -> Any:
    """The parsed YAML of `path` as of `version` (cached: callers must not mutate it); errors name the file."""
    return _read(path, version)


@cache
def _read(path: Path, _version: int) -> Any:
    if not path.is_file():
        raise ConfigurationError(f"universe file {path} does not exist (set {UNIVERSE_ENV} to a YAML file)")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
