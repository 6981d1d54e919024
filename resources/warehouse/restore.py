"""Restore rows from `timeseries_archive`: the undo of an upsert that replaced a stored row.

The upsert (with an `AuditContext`) archives the old version of every row it changes. `restore` writes an
archived version back through the same `upsert_frame`, with an audit context of its own — so the version
being replaced is archived in turn (a restore can itself be undone) and an 'update' row lands in
`audit_log`; a restored row that no longer existed gets an 'insert' audit row here. The archive rows are
marked `restored_at`. Rows are not re-validated: restoring is an operator's decision about data that was
stored before. It lives in the warehouse layer because it writes through the upsert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.quality.jsonsafe import records
from market_warehouse.resources.quality.split import coerce, key_columns, table_of
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.stored_keys import existing_keys, stored_mask
from market_warehouse.resources.warehouse.upsert import AuditContext, upsert_frame

# Refreshed by the upsert itself when a row changes; an archived value is not restored.
_INGEST_COLUMNS = frozenset({"ingested_at", "computed_at"})


@dataclass(frozen=True)
class RestoreResult:
    restored: int
    inserted: int
    updated: int
    unchanged: int
    archive_ids: tuple[int, ...]


def _archive_rows(
    conn: sa.Connection, archive_ids: Iterable[int] | None, table: str | None, key: Mapping[str, Any] | None
) -> list[Mapping[str, Any]]:
    if archive_ids is not None:
        ids = sorted({int(i) for i in archive_ids})
        rows = conn.execute(sql_text("common/quality_archive_get"), {"ids": ids}).mappings().all()
        missing = sorted(set(ids) - {r["id"] for r in rows})
        if missing:
            raise LookupError(f"no timeseries_archive rows with id {', '.join(map(str, missing))}")
        return rows
    if table is None or key is None:
        raise ValueError("restore needs archive ids, or a table and the key of the row")
    columns = table_of(table).c
    # A key part the writers may omit (ohlcv's price kind) is the one the upsert filled in.
    defaults = {
        c.name: c.info["key_default"] for c in columns if "key_default" in c.info and c.name not in key
    }
    typed = records(pd.DataFrame([{**key, **defaults}]))[0]
    time_keys = [k for k in typed if k in columns and isinstance(columns[k].type, sa.DateTime)]
    stmt = sql_text("common/quality_archive_latest").bindparams(
        sa.bindparam("plain", type_=sa.JSON), sa.bindparam("times", type_=sa.JSON)
    )
    params = {
        "table_name": table,
        "time_keys": time_keys,
        "plain": {k: v for k, v in typed.items() if k not in time_keys},
        "times": {k: typed[k] for k in time_keys},
    }
    rows = conn.execute(stmt, params).mappings().all()
    if not rows:
        raise LookupError(f"no archived version of {table} row {dict(key)} to restore")
    return rows


def restore(
    engine: sa.Engine,
    archive_ids: Iterable[int] | None = None,
    *,
    table: str | None = None,
    key: Mapping[str, Any] | None = None,
    restored_by: str = "restore",
    reason: str = "restored from timeseries_archive",
) -> RestoreResult:
    """Upsert archived versions back; by archive ids, or the latest unrestored version of `table`'s `key`.

    One transaction for everything. Returns counts as the upsert saw them and the archive ids restored.
    """
    totals = {"inserted": 0, "updated": 0, "unchanged": 0}
    done: list[int] = []
    with engine.begin() as conn:
        rows = _archive_rows(conn, archive_ids, table, key)
        by_table: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_table.setdefault(row["table_name"], []).append(row)
        for name, items in by_table.items():
            items = sorted(items, key=lambda r: r["id"])  # several versions of one key: the last id wins
            frame = pd.DataFrame([dict(r["row_data"]) for r in items], index=[r["id"] for r in items])
            frame = frame.drop(columns=[c for c in frame.columns if c in _INGEST_COLUMNS])
            typed, bad, messages = coerce(name, frame)
            if bad.any():
                raise ValueError(f"archived {name} rows cannot be typed: {messages.tolist()[:3]}")
            keys = key_columns(name)
            typed = typed.loc[~typed.duplicated(keys, keep="last")]
            existing = existing_keys(conn, name, typed)
            ids = ", ".join(f"#{i}" for i in typed.index)
            audit = AuditContext(restored_by, f"{reason} {ids}")
            result = upsert_frame(conn, name, typed.reset_index(drop=True), audit=audit)
            new = typed.loc[[not stored for stored in stored_mask(typed, name, existing)]]
            if len(new):
                data = records(new)
                audit_rows = [
                    {
                        "table_name": name,
                        "operation": "insert",
                        "row_key": {k: d[k] for k in keys},
                        "new_data": d,
                        "reason": f"{reason} #{aid}",
                    }
                    for aid, d in zip(new.index, data, strict=True)
                ]
                stmt = sql_text("common/quality_audit_insert").bindparams(sa.bindparam("rows", type_=sa.JSON))
                conn.execute(stmt, {"rows": audit_rows, "changed_by": restored_by})
            totals["inserted"] += result.inserted
            totals["updated"] += result.updated
            totals["unchanged"] += result.unchanged
            done.extend(int(r["id"]) for r in items)
        conn.execute(sql_text("common/quality_archive_mark_restored"), {"ids": done})
    return RestoreResult(len(done), archive_ids=tuple(sorted(done)), **totals)
