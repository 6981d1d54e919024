"""Release quarantined rows: re-validate the (corrected) rows and load those that now pass.

The put-back half of the quarantine (`resources.quality.quarantine` writes, lists and corrects rows; it
knows nothing of the load). `release` re-validates the rows against the current rules and upserts those
that pass through the same `load_batch` as any load (score, upsert with audit), marks them released and
records an audit_log row per released row. Rows still failing stay in quarantine with the new message.
It lives in the warehouse layer because it calls the load, which calls the validation: imports go one way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.quality.jsonsafe import records
from market_warehouse.resources.quality.rules import load_rules
from market_warehouse.resources.quality.split import SplitResult, coerce, key_columns, table_of
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.load import load_batch
from market_warehouse.resources.warehouse.stored_keys import existing_keys, stored_mask


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
    ids = sorted({int(i) for i in ids})
    released: list[int] = []
    failing: dict[int, str] = {}
    totals = {"inserted": 0, "updated": 0, "unchanged": 0}
    with engine.connect() as conn:
        rows = conn.execute(sql_text("common/quality_quarantine_get"), {"ids": ids}).mappings().all()
    _check_waiting(ids, rows)
    by_table: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(row["table_name"], []).append(row)
    for table, table_rows in by_table.items():
        frame = pd.DataFrame([r["row_data"] for r in table_rows], index=[r["id"] for r in table_rows])
        with engine.begin() as conn:
            rules = load_rules(conn, table)
            existing = _stored_keys(conn, table, frame)
            result, split = load_batch(conn, table, frame, rules, run_id=run_id, quarantine=False)
            failing.update(_remessage(conn, split))
            ok_ids = [int(i) for i in split.good.index]
            if ok_ids:
                _mark_released(conn, table, split.good.loc[ok_ids], existing, run_id=run_id, reason=reason)
                released.extend(ok_ids)
            totals["inserted"] += result.inserted
            totals["updated"] += result.updated
            totals["unchanged"] += result.unchanged
    return ReleaseResult(sorted(released), failing, **totals)


def _check_waiting(ids: list[int], rows: list[Mapping[str, Any]]) -> None:
    """Every id names a quarantine row still waiting, else LookupError naming the others."""
    found = {r["id"] for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError(f"no quarantine rows with id {', '.join(map(str, missing))}")
    already = [r["id"] for r in rows if r["released_at"] is not None]
    if already:
        raise LookupError(f"quarantine rows already released: {', '.join(map(str, already))}")


def _remessage(conn: sa.Connection, split: SplitResult) -> dict[int, str]:
    """Rows still failing keep waiting with the current rule and message; returns id -> message."""
    bad = split.rejected_message.reindex(split.rejected.index)
    if len(bad):
        conn.execute(
            sql_text("common/quality_quarantine_remessage").bindparams(sa.bindparam("rows", type_=sa.JSON)),
            {
                "rows": [
                    {"id": int(q), "rule": str(split.rejected_rule.get(q)), "message": m}
                    for q, m in bad.items()
                ]
            },
        )
    return {int(qid): str(message) for qid, message in bad.items()}


def _mark_released(
    conn: sa.Connection, table: str, good: pd.DataFrame, existing: set[tuple], *, run_id: str, reason: str
) -> None:
    """Mark the loaded rows released, with one audit_log row each ('update' when the key was stored)."""
    keys = key_columns(table)
    audit = [
        {
            "table_name": table,
            "operation": "update" if was_stored else "insert",
            "row_key": {k: data.get(k) for k in keys},
            "old_data": {"quarantine_id": int(qid)},
            "new_data": data,
            "changed_fields": None,
        }
        for qid, data, was_stored in zip(
            good.index, records(good), stored_mask(good, table, existing), strict=True
        )
    ]
    stmt = sql_text("common/quality_quarantine_release").bindparams(sa.bindparam("audit", type_=sa.JSON))
    ids = [int(i) for i in good.index]
    conn.execute(stmt, {"ids": ids, "run_id": run_id, "audit": audit, "reason": reason})


def _stored_keys(conn: sa.Connection, table: str, frame: pd.DataFrame) -> set[tuple]:
    """Natural keys of the (typeable) rows of `frame` already stored: their release is an update."""
    keys = key_columns(table)
    columns = table_of(table).c
    # A key part writers may omit (ohlcv's price kind) is filled by `coerce`, as the load fills it.
    if any(k not in frame.columns and "key_default" not in columns[k].info for k in keys):
        return set()
    typed, unparseable, _ = coerce(table, frame)
    usable = typed.loc[~unparseable.to_numpy() & typed[keys].notna().all(axis=1).to_numpy()]
    return existing_keys(conn, table, usable) if len(usable) else set()
