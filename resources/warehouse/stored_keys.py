"""Which natural keys of a frame are stored now: what tells an operator's put-back an insert from an update.

`release` (quarantine) and `restore` (archive) both write rows back and record one audit row per row,
'insert' or 'update' by whether the key existed before the write; both read it here, before writing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from psycopg2 import sql as pgsql

from market_warehouse.resources.quality.jsonsafe import records
from market_warehouse.resources.quality.split import key_columns
from market_warehouse.resources.sqlfiles import load_sql


def existing_keys(conn: sa.Connection, table: str, frame: pd.DataFrame) -> set[tuple]:
    """Which of the frame's keys are stored now (typed through the table's own row type)."""
    keys = key_columns(table)
    stmt = pgsql.SQL(load_sql("common/quality_existing_keys")).format(
        table=pgsql.Identifier(table),
        keys=pgsql.SQL(", ").join(pgsql.Identifier(k) for k in keys),
        t_keys=pgsql.SQL(", ").join(pgsql.Identifier("t", k) for k in keys),
    )
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(stmt, {"rows": json.dumps(records(frame[keys]))})
        return {tuple(normalize_key(v) for v in row) for row in cursor.fetchall()}


def normalize_key(value: Any) -> Any:
    """Comparable key parts: instants as UTC Timestamps, numpy scalars as Python values."""
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).tz_convert("UTC")
    return value.item() if hasattr(value, "item") else value


def stored_mask(frame: pd.DataFrame, table: str, stored: set[tuple]) -> list[bool]:
    """Per row of `frame`: was its key among `stored` (an `existing_keys` answer read before the write)?"""
    return [
        tuple(normalize_key(v) for v in row) in stored
        for row in frame[key_columns(table)].itertuples(index=False, name=None)
    ]
