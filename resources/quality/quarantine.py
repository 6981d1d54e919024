"""Quarantine: rejected rows kept with their reason until corrected and released.

Rows land here from `load_frame` (raw values as the source sent them, JSON-safe), never silently dropped.
An operator lists them, corrects `row_data` (`correct`, recorded in audit_log), and releases them with
`resources.warehouse.release.release`, which re-validates and loads them: releasing calls the load, and
the load calls this module, so the release sits above both (imports go one way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from market_warehouse.resources.quality.jsonsafe import json_safe, records
from market_warehouse.resources.quality.split import SplitResult, key_columns
from market_warehouse.resources.sqlfiles import sql_text


def write_quarantine(
    conn: sa.Connection,
    dataset: str,
    split: SplitResult,
    *,
    run_id: str | None,
    partition_key: str | None,
    source: str | None,
) -> int:
    """Insert the batch's rejected rows (already-waiting identical rows are skipped); rows inserted."""
    rejected = split.rejected
    if rejected.empty:
        return 0
    keys = [k for k in key_columns(dataset) if k in rejected.columns]
    raw = records(rejected)
    rules = split.rejected_rule.reindex(rejected.index).tolist()
    messages = split.rejected_message.reindex(rejected.index).tolist()
    rows = []
    for data, rule, message in zip(raw, rules, messages, strict=True):
        key = {k: data.get(k) for k in keys}
        rows.append(
            {
                "key": key if any(v is not None for v in key.values()) else None,
                "row_data": data,
                "rule": rule,
                "message": message,
            }
        )
    stmt = sql_text("common/quality_quarantine_insert").bindparams(sa.bindparam("rows", type_=sa.JSON))
    params = {
        "rows": rows,
        "table_name": dataset,
        "run_id": run_id,
        "partition_key": partition_key,
        "source": source,
    }
    return int(conn.execute(stmt, params).scalar() or 0)


@dataclass(frozen=True)
class QuarantinedRow:
    id: int
    table_name: str
    key: dict[str, Any] | None
    row_data: dict[str, Any]
    rule: str
    message: str | None
    run_id: str | None
    partition_key: str | None
    source: str | None
    created_at: datetime
    released_at: datetime | None
    released_by_run: str | None


def list_quarantine(
    conn: sa.Connection,
    *,
    table: str | None = None,
    rule: str | None = None,
    run_id: str | None = None,
    partition_key: str | None = None,
    include_released: bool = False,
    limit: int = 100,
) -> list[QuarantinedRow]:
    """Quarantined rows, newest first, filtered."""
    params = {
        "table_name": table,
        "rule": rule,
        "run_id": run_id,
        "partition_key": partition_key,
        "include_released": include_released,
        "limit": limit,
    }
    rows = conn.execute(sql_text("common/quality_quarantine_list"), params).mappings().all()
    return [QuarantinedRow(**row) for row in rows]


def count_quarantined(
    conn: sa.Connection, table: str, *, run_id: str | None = None, partition_key: str | None = None
) -> int:
    """Unreleased rows of `table` quarantined by `run_id` and/or for `partition_key` (any when None)."""
    params = {"table_name": table, "run_id": run_id, "partition_key": partition_key}
    return int(conn.execute(sql_text("common/quality_quarantine_count"), params).scalar() or 0)


def correct(
    engine: sa.Engine, quarantine_id: int, changes: Mapping[str, Any], *, changed_by: str, reason: str
) -> dict[str, Any]:
    """Apply `changes` to a waiting row's `row_data` (recorded in audit_log); returns the new row_data."""
    changes = {str(k): json_safe(v) for k, v in changes.items()}
    with engine.begin() as conn:
        row = (
            conn.execute(sql_text("common/quality_quarantine_get"), {"ids": [quarantine_id]}).mappings().all()
        )
        if not row or row[0]["released_at"] is not None:
            raise LookupError(f"quarantine row {quarantine_id} does not exist or was already released")
        old = dict(row[0]["row_data"])
        new = {**old, **changes}
        stmt = sql_text("common/quality_quarantine_correct").bindparams(
            sa.bindparam("row_data", type_=sa.JSON),
            sa.bindparam("audit", type_=sa.JSON),
        )
        audit = [
            {
                "table_name": "quarantine",
                "operation": "update",
                "row_key": {"id": quarantine_id},
                "old_data": old,
                "new_data": new,
                "changed_fields": sorted(k for k in changes if old.get(k) != new.get(k)),
            }
        ]
        conn.execute(
            stmt,
            {
                "id": quarantine_id,
                "row_data": new,
                "audit": audit,
                "changed_by": changed_by,
                "reason": reason,
            },
        )
    return new
