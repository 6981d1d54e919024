"""Operations on instruments, funding rates and open interest (`resources.models.market`, issue 13).

Instruments are few and descriptive: they are upserted in one statement (`sql/common/upsert_instruments.sql`)
that never deletes one, keeps the earliest `first_seen` and the latest `last_seen`, and keeps a listing or
delisting time once known. Funding rates and open interest are time series written by the bulk upsert
engine (or, validated and quarantined, by `resources.warehouse.load.load_frame`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.models import INSTRUMENT_TYPES
from market_warehouse.resources.models import FundingRate as FundingRateModel
from market_warehouse.resources.models import OpenInterest as OpenInterestModel
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.ops.common import fetch_all, series_rows
from market_warehouse.resources.warehouse.records import (
    FundingRateRecord,
    InstrumentRecord,
    OpenInterestRecord,
    to_frame,
    utc,
)
from market_warehouse.resources.warehouse.upsert import AuditContext, UpsertResult, upsert_dataframe

_INSTRUMENT_FIELDS = tuple(InstrumentRecord.__dataclass_fields__)
_TIMES = ("expiry", "first_seen", "last_seen", "listed_at", "delisted_at")


def _rows(items: pd.DataFrame | Iterable[Any]) -> list[dict[str, Any]]:
    """Dicts from a DataFrame, records or mappings; missing values (NaN, NaT, pd.NA) as None."""
    if isinstance(items, pd.DataFrame):
        raw = items.to_dict("records")
    else:
        raw = [item if isinstance(item, Mapping) else vars(item) for item in items]
    return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in raw]


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _instrument_row(row: dict[str, Any], position: int, seen: datetime) -> dict[str, Any]:
    """One instrument as the upsert statement takes it; a ValueError names the row and the rule broken."""
    unknown = sorted(set(row) - set(_INSTRUMENT_FIELDS))
    if unknown:
        raise ValueError(f"instrument row {position}: unknown field(s) {', '.join(unknown)}")
    where = f"instrument row {position} ({row.get('exchange')!r}, {row.get('symbol')!r})"
    for name in ("exchange", "symbol", "type", "base", "quote"):
        if not row.get(name):
            raise ValueError(f"{where}: {name} is required")
    if row["type"] not in INSTRUMENT_TYPES:
        raise ValueError(f"{where}: type {row['type']!r} is not one of {', '.join(INSTRUMENT_TYPES)}")
    if row["type"] != "spot" and not row.get("settle"):
        raise ValueError(f"{where}: a {row['type']} needs its settle currency (ccxt BASE/QUOTE:SETTLE)")
    out = {name: row.get(name) for name in _INSTRUMENT_FIELDS}
    for name in _TIMES:
        out[name] = utc(pd.Timestamp(out[name]).to_pydatetime()) if out[name] is not None else None
    out["first_seen"] = out["first_seen"] or seen
    out["last_seen"] = out["last_seen"] or seen
    for name in _TIMES:
        out[name] = out[name].isoformat() if out[name] is not None else None
    return out


def upsert_instruments(
    conn: sa.Connection,
    instruments: pd.DataFrame | Iterable[InstrumentRecord | Mapping[str, Any]],
    seen_at: datetime | None = None,
) -> int:
    """Insert new instruments and update known ones (a frame, records or dicts with `InstrumentRecord`'s
    fields); never deletes. Rows without first/last seen are seen at `seen_at` (default: now). An instrument
    gone from a venue's list stays: mark it `active=False` (and `delisted_at` when known). Returns the
    number of instruments inserted or changed."""
    seen = utc(seen_at) or clock.now()
    rows = [_instrument_row(row, i, seen) for i, row in enumerate(_rows(instruments))]
    if not rows:
        return 0
    keys = [(r["exchange"], r["symbol"]) for r in rows]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"instruments given more than once: {twice[:5]}")
    params = {"rows": json.dumps(rows, default=str), "now": clock.now()}
    return len(conn.execute(sql_text("common/upsert_instruments"), params).all())


def get_instruments(
    conn: sa.Connection,
    exchange: str | None = None,
    type: str | None = None,  # noqa: A002 - the column's (and ccxt's) name
    active: bool | None = None,
    at: datetime | None = None,
) -> list[InstrumentRecord]:
    """Instruments by exchange and symbol, each filter optional. `at`: those listed at that instant,
    delisted and expired ones included if they were still listed then (a backtest over 2021 sees the pairs
    of 2021, not today's survivors); see `sql/common/get_instruments.sql`."""
    if type is not None and type not in INSTRUMENT_TYPES:
        raise ValueError(f"unknown instrument type {type!r}: one of {', '.join(INSTRUMENT_TYPES)}")
    params = {"exchange": exchange, "type": type, "active": active, "at": utc(at)}
    return fetch_all(conn, sql_text("common/get_instruments"), InstrumentRecord, params)


def get_funding_rates(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[FundingRateRecord]:
    """Funding events of a perpetual with time in [start, end), in time order (observed intervals)."""
    where = {"exchange": exchange, "symbol": symbol}
    return series_rows(conn, FundingRateModel, FundingRateRecord, where, start, end, limit)


def get_open_interest(
    conn: sa.Connection,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[OpenInterestRecord]:
    """Open interest of a derivative per `interval` with time in [start, end), in time order."""
    where = {"exchange": exchange, "symbol": symbol, "interval": interval}
    return series_rows(conn, OpenInterestModel, OpenInterestRecord, where, start, end, limit)


def _frame(items: pd.DataFrame | Iterable[Any], cls: type) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        return items
    return to_frame([item if isinstance(item, cls) else cls(**item) for item in items], cls)


def insert_funding_rates(
    engine: sa.Engine,
    rates: pd.DataFrame | Iterable[FundingRateRecord | Mapping[str, Any]],
    *,
    audit: AuditContext | None = None,
) -> UpsertResult:
    """Upsert funding events keyed by (exchange, symbol, time), unvalidated (validated and quarantined:
    `load_frame(engine, "funding_rates", frame)`)."""
    return upsert_dataframe(engine, "funding_rates", _frame(rates, FundingRateRecord), audit=audit)


def insert_open_interest(
    engine: sa.Engine,
    points: pd.DataFrame | Iterable[OpenInterestRecord | Mapping[str, Any]],
    *,
    audit: AuditContext | None = None,
) -> UpsertResult:
    """Upsert open interest keyed by (exchange, symbol, interval, time), unvalidated (validated:
    `load_frame(engine, "open_interest", frame)`)."""
    return upsert_dataframe(engine, "open_interest", _frame(points, OpenInterestRecord), audit=audit)
