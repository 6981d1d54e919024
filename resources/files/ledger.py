"""The `ingest_files` ledger: which version (sha256) of which landed file was loaded, and how it went.

A file is identified by its path relative to the landing folder, a version by the sha256 of its bytes.
Re-runs skip a file whose latest ledger entry has the same hash and ended loaded, partial or empty; a
changed file gets a new entry and is loaded again. Its new content is upserted: rows that changed are
updated, new rows inserted, and rows of the old version that vanished from the new one are NOT deleted
(a landed file is a source of candles, not the definition of a range). Failed files are retried on every
run, since the cause may be outside the file (a time zone now declared, a database error).

The entry is written after the file's rows, in its own transaction: a crash in between leaves no entry, so
the next run loads the file again, which the idempotent upsert makes harmless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from market_warehouse.resources.models import IngestFile

DONE = frozenset({"loaded", "partial", "empty"})
STATUSES = DONE | {"failed"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    size: int


@dataclass(frozen=True)
class LedgerEntry:
    path: str
    sha256: str
    size_bytes: int
    status: str
    layout: str | None
    time_unit: str | None
    rows_loaded: int
    rows_quarantined: int
    error: str | None
    loaded_at: datetime


def fingerprint(path: Path) -> Fingerprint:
    """sha256 and size of a file, read in 1 MiB chunks (landed files can be large)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Fingerprint(digest.hexdigest(), size)


def _entry(row) -> LedgerEntry:
    return LedgerEntry(
        path=row.path,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        status=row.status,
        layout=row.layout,
        time_unit=row.time_unit,
        rows_loaded=row.rows_loaded,
        rows_quarantined=row.rows_quarantined,
        error=row.error,
        loaded_at=row.loaded_at,
    )


def latest_entries(conn: sa.Connection, paths: list[str] | None = None) -> dict[str, LedgerEntry]:
    """The newest entry of each path (of `paths`, or of every path ever recorded)."""
    table = IngestFile.__table__
    rank = (
        sa.func.row_number()
        .over(partition_by=table.c.path, order_by=(table.c.loaded_at.desc(), table.c.id.desc()))
        .label("rank")
    )
    ranked = sa.select(table, rank)
    if paths is not None:
        if not paths:
            return {}
        ranked = ranked.where(table.c.path.in_(paths))
    ranked = ranked.subquery()
    stmt = sa.select(ranked).where(ranked.c.rank == 1)
    return {row.path: _entry(row) for row in conn.execute(stmt)}


def is_current(entry: LedgerEntry | None, print_: Fingerprint) -> bool:
    """True when the file is unchanged since its latest entry and that load ended well."""
    return entry is not None and entry.sha256 == print_.sha256 and entry.status in DONE


def record(
    conn: sa.Connection,
    *,
    path: str,
    print_: Fingerprint,
    status: str,
    run_id: str | None,
    layout: str | None = None,
    time_unit: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    rows_loaded: int = 0,
    rows_quarantined: int = 0,
    error: str | None = None,
    first_time: datetime | None = None,
    last_time: datetime | None = None,
) -> None:
    """Insert or refresh the entry of (path, sha256); `loaded_at` becomes now, making it the latest."""
    if status not in STATUSES:
        raise ValueError(f"ledger status must be one of {sorted(STATUSES)}, not {status!r}")
    values = {
        "path": path,
        "sha256": print_.sha256,
        "size_bytes": print_.size,
        "layout": layout,
        "time_unit": time_unit,
        "exchange": exchange,
        "symbol": symbol,
        "interval": interval,
        "rows_loaded": rows_loaded,
        "rows_quarantined": rows_quarantined,
        "status": status,
        "error": error,
        "first_time": first_time,
        "last_time": last_time,
        "run_id": run_id,
    }
    stmt = insert(IngestFile.__table__).values(**values, loaded_at=sa.func.clock_timestamp())
    update = {k: stmt.excluded[k] for k in values if k not in {"path", "sha256"}}
    update["loaded_at"] = sa.func.clock_timestamp()
    conn.execute(stmt.on_conflict_do_update(index_elements=["path", "sha256"], set_=update))


def failed_entries(conn: sa.Connection, paths: list[str]) -> list[LedgerEntry]:
    """Files among `paths` whose latest load failed: what the 'no failed files' check reports."""
    return sorted(
        (e for e in latest_entries(conn, paths).values() if e.status == "failed"), key=lambda e: e.path
    )
