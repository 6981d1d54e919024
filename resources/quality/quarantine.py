"""Quarantine: rejected rows kept with their reason until corrected and released.

Rows land here from `load_frame` (raw values as the source sent them, JSON-safe), never silently dropped.
An operator lists them, corrects `row_data` (`correct`, recorded in audit_log), and releases them:
`release` re-validates the corrected rows against the current rules, upserts those that now pass through
the same path as any load (score, upsert with audit), marks them released and records an audit_log row
per released row. Rows still failing stay in quarantine with the new message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from resources.quality.archive import existing_keys, normalize_key
from resources.quality.jsonsafe import json_safe, records
from resources.quality.split import SplitResult, coerce, key_columns
from resources.sqlfiles import sql_text


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


@dataclass(frozen=True)
class ReleaseResult:
    released: list[int] = field(default_factory=list)
    still_failing: dict[int, str] = field(default_factory=dict)  # id -> message
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def release(
    engine: sa.Engine, ids: Iterable[int], *, run_id: str, reason: str = "released from quarantine"
) -> ReleaseResult:
    """Re-validate and upsert the (corrected) rows `ids`, one transaction per table.

    Released rows get `released_at`/`released_by_run` and one audit_log row each (operation 'insert' or
    'update' by what the upsert did, old_data = the quarantine id and rule); failing ones keep waiting.
    """
    from resources.quality.rules import load_rules
    from resources.warehouse.load import load_batch

    ids = sorted({int(i) for i in ids})
    released: list[int] = []
    failing: dict[int, str] = {}
    totals = {"inserted": 0, "updated": 0, "unchanged": 0}
    with engine.connect() as conn:
        rows = conn.execute(sql_text("common/quality_quarantine_get"), {"ids": ids}).mappings().all()
    found = {r["id"] for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError(f"no quarantine rows with id {', '.join(map(str, missing))}")
    already = [r["id"] for r in rows if r["released_at"] is not None]
    if already:
        raise LookupError(f"quarantine rows already released: {', '.join(map(str, already))}")
    by_table: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(row["table_name"], []).append(row)
    for table, table_rows in by_table.items():
        frame = pd.DataFrame([r["row_data"] for r in table_rows], index=[r["id"] for r in table_rows])
        with engine.begin() as conn:
            rules = load_rules(conn, table)
            existing = _stored_keys(conn, table, frame)
            result, split = load_batch(conn, table, frame, rules, run_id=run_id, quarantine=False)
            ok_ids = [int(i) for i in split.good.index]
            bad = split.rejected_message.reindex(split.rejected.index)
            for qid, message in bad.items():
                failing[int(qid)] = str(message)
            if len(bad):
                conn.execute(
                    sql_text("common/quality_quarantine_remessage").bindparams(
                        sa.bindparam("rows", type_=sa.JSON)
                    ),
                    {
                        "rows": [
                            {"id": int(q), "rule": str(split.rejected_rule.get(q)), "message": m}
                            for q, m in bad.items()
                        ]
                    },
                )
            if ok_ids:
                keys = key_columns(table)
                good = split.good.loc[ok_ids]
                good_rows = records(good)
                stored_before = [
                    tuple(normalize_key(v) for v in row) in existing
                    for row in good[keys].itertuples(index=False, name=None)
                ]
                audit = [
                    {
                        "table_name": table,
                        "operation": "update" if was_stored else "insert",
                        "row_key": {k: data.get(k) for k in keys},
                        "old_data": {"quarantine_id": qid},
                        "new_data": data,
                        "changed_fields": None,
                    }
                    for qid, data, was_stored in zip(ok_ids, good_rows, stored_before, strict=True)
                ]
                stmt = sql_text("common/quality_quarantine_release").bindparams(
                    sa.bindparam("audit", type_=sa.JSON)
                )
                conn.execute(stmt, {"ids": ok_ids, "run_id": run_id, "audit": audit, "reason": reason})
                released.extend(ok_ids)
            totals["inserted"] += result.inserted
            totals["updated"] += result.updated
            totals["unchanged"] += result.unchanged
    return ReleaseResult(sorted(released), failing, **totals)


def _stored_keys(conn: sa.Connection, table: str, frame: pd.DataFrame) -> set[tuple]:
    """Natural keys of the (typeable) rows of `frame` already stored: their release is an update."""
    keys = key_columns(table)
    if not set(keys) <= set(frame.columns):
        return set()
    typed, unparseable, _ = coerce(table, frame)
    usable = typed.loc[~unparseable.to_numpy() & typed[keys].notna().all(axis=1).to_numpy()]
    return existing_keys(conn, table, usable) if len(usable) else set()
