"""Idempotent writes for tables without a natural unique key (signals, fills, round trips, backtests).

The rows a partition owns are selected by a scope (e.g. strategy, series and time window), compared with
the rows the computation wants by a natural key, and only the differences are written: new rows inserted,
changed rows updated, rows no longer produced deleted. A re-run of the same partition writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa


@dataclass(frozen=True)
class SyncResult:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted


def _normal(value: Any) -> Any:
    """A comparable form of a value as written and as read back (timestamps, decimals, floats)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime):
        return value
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def sync_rows(
    conn: sa.Connection,
    table: sa.Table,
    scope: Sequence[sa.ColumnElement[bool]],
    key: Sequence[str],
    rows: list[dict[str, Any]],
    compare: Sequence[str] | None = None,
    stamp: dict[str, Any] | None = None,
) -> tuple[SyncResult, dict[tuple, Any]]:
    """Make the rows of `table` matching `scope` equal to `rows` (matched by `key` columns).

    `stamp` columns (e.g. the run id) are written with every inserted or changed row but never compared,
    so they name the run that last changed a row. Returns the counts and, for tables with an `id`, the id
    of every wanted row (new or existing) by key.
    """
    stamp = stamp or {}
    columns = [c for c in (compare or {c for r in rows for c in r}) if c not in stamp]
    has_id = "id" in table.c
    wanted = {tuple(_normal(r[k]) for k in key): r for r in rows}
    if len(wanted) != len(rows):
        raise ValueError(f"{table.name}: rows to write repeat a key {tuple(key)}")
    existing = conn.execute(sa.select(table).where(*scope)).mappings().all()
    have = {}
    duplicates = []
    for row in existing:
        k = tuple(_normal(row[c]) for c in key)
        if k in have:
            duplicates.append(row)
        else:
            have[k] = row
    ids, inserted, updated, unchanged = {}, 0, 0, 0
    for k, row in wanted.items():
        old = have.get(k)
        if old is None:
            stmt = sa.insert(table).values(**row, **stamp)
            if has_id:
                ids[k] = conn.execute(stmt.returning(table.c.id)).scalar_one()
            else:
                conn.execute(stmt)
            inserted += 1
            continue
        if has_id:
            ids[k] = old["id"]
        changes = {c: row[c] for c in columns if c in row and _normal(row[c]) != _normal(old[c])}
        if changes:
            conn.execute(sa.update(table).where(*_pk_filter(table, old)).values(**changes, **stamp))
            updated += 1
        else:
            unchanged += 1
    stale = [old for k, old in have.items() if k not in wanted]
    for old in stale:
        conn.execute(sa.delete(table).where(*_pk_filter(table, old)))
    for dup in duplicates:
        conn.execute(sa.delete(table).where(*_pk_filter(table, dup)))
    return SyncResult(inserted, updated, len(stale) + len(duplicates), unchanged), ids


def _pk_filter(table: sa.Table, row: Any) -> list[sa.ColumnElement[bool]]:
    return [col == row[col.name] for col in table.primary_key.columns]
