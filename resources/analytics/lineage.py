"""Lineage for auditors: one `lineage` row per materialization of a derived asset and partition, and a
walk from any derived figure back to the files and exchange responses it came from.

A row records the asset, partition, run id, code version, the data version of what was written (a content
hash: equal content, equal version), rows read and written, and every upstream input as
{"asset_key", "partition", "data_version", "run_id"}. Inputs produced by a derived asset point to that
asset's own lineage row (same asset, partition and run), so `sql/common/lineage_trace.sql` follows the
chain in SQL; inputs from source assets (`ohlcv` from exchanges, `historical_files` from landed files)
end it and are resolved to `coverage` rows (exchange requests answered) and `ingest_files` rows (files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.models import TIMESERIES, Coverage, IngestFile, Lineage, Ohlcv
from market_warehouse.resources.sqlfiles import sql_text

SOURCE_ASSETS = ("ohlcv", "historical_files")
# Derived tables and the asset that writes them (the asset key is the table name unless listed).
ASSET_OF_TABLE = {
    "backtest_results": "backtest",
    "trade_history": "backtest",
    "bot_trades": "backtest",
    "ml_models": "forecasts",
}
DAY = timedelta(days=1)


def _canonical(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if np.isnan(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def content_version(*parts: pd.DataFrame | Iterable[dict[str, Any]]) -> str:
    """A data version from content: the same rows give the same version, whatever run wrote them."""
    digest = hashlib.sha256()
    for part in parts:
        records = part.to_dict("records") if isinstance(part, pd.DataFrame) else list(part)
        canon = sorted(json.dumps(_canonical(r), sort_keys=True) for r in records)
        digest.update(json.dumps(canon).encode())
    return digest.hexdigest()[:16]


def partition_of(t: datetime | pd.Timestamp) -> str:
    """Daily partition key of a UTC time."""
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%d")


def days_between(start: datetime, end: datetime) -> list[str]:
    """Partition keys of the UTC days touched by [start, end)."""
    first = pd.Timestamp(start).tz_convert("UTC").floor("D")
    last = (pd.Timestamp(end) - pd.Timedelta(microseconds=1)).tz_convert("UTC").floor("D")
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")] if last >= first else []


@dataclass
class LineageRecord:
    asset_key: str
    partition_key: str | None
    run_id: str | None
    code_version: str | None
    data_version: str | None
    upstream: list[dict[str, Any]] = field(default_factory=list)
    rows_in: int | None = None
    rows_out: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def record(conn: sa.Connection, rec: LineageRecord) -> int:
    """Append the lineage row of one materialization (a log: each run adds its row)."""
    stmt = (
        sa.insert(Lineage)
        .values(
            asset_key=rec.asset_key,
            partition_key=rec.partition_key,
            run_id=rec.run_id,
            code_version=rec.code_version,
            data_version=rec.data_version,
            upstream=_canonical(rec.upstream),
            rows_in=rec.rows_in,
            rows_out=rec.rows_out,
            metadata_=_canonical(rec.metadata),
        )
        .returning(Lineage.id)
    )
    return int(conn.execute(stmt).scalar_one())


def latest(conn: sa.Connection, asset_key: str, partition_key: str | None, run_id: str | None = None) -> Any:
    """The latest lineage row of an asset partition (of one run if given), or None."""
    query = sa.select(Lineage).where(
        Lineage.asset_key == asset_key, Lineage.partition_key.is_not_distinct_from(partition_key)
    )
    if run_id is not None:
        query = query.where(Lineage.run_id == run_id)
    return conn.execute(query.order_by(Lineage.created_at.desc(), Lineage.id.desc()).limit(1)).first()


def derived_input(conn: sa.Connection, asset_key: str, partition_key: str | None) -> dict[str, Any]:
    """Upstream entry for an input produced by a derived asset: its latest lineage row's run and version."""
    row = latest(conn, asset_key, partition_key)
    return {
        "asset_key": asset_key,
        "partition": partition_key,
        "data_version": row.data_version if row else None,
        "run_id": row.run_id if row else None,
    }


# --- the walk back ----------------------------------------------------------------------------------------


@dataclass
class Trace:
    """Materializations behind one derived row, and the sources at the end of the chain."""

    start: dict[str, Any]
    chain: list[dict[str, Any]]
    sources: list[dict[str, Any]]

    def assets(self) -> list[str]:
        return sorted({node["asset_key"] for node in self.chain})


def find_row(conn: sa.Connection, table: str, key: dict[str, Any]) -> dict[str, Any]:
    """The row of `table` with column values `key`, as a mapping; raises if there is not exactly one."""
    tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
    unknown = set(key) - set(tbl.c.keys())
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
    rows = conn.execute(sa.select(tbl).where(*[tbl.c[k] == v for k, v in key.items()])).mappings().all()
    if len(rows) != 1:
        raise LookupError(f"{table} {key}: {len(rows)} rows match, expected exactly one")
    return dict(rows[0])


def _row_partition(table: str, row: dict[str, Any]) -> str | None:
    spec = TIMESERIES.get(table)
    column = spec.time_column if spec else next((c for c in ("executed_at", "end_time") if row.get(c)), None)
    if column is None or row.get(column) is None:
        return None
    t = row[column]
    if table == "backtest_results":  # a backtest ending at D+1 00:00 is the partition of day D
        t = t - timedelta(microseconds=1)
    return partition_of(t)


def trace(conn: sa.Connection, table: str, key: dict[str, Any], max_depth: int = 20) -> Trace:
    """Walk from one derived row back to its sources: which runs, inputs and code produced it."""
    row = find_row(conn, table, key)
    asset = ASSET_OF_TABLE.get(table, table)
    partition = _row_partition(table, row)
    start = latest(conn, asset, partition, row.get("run_id"))
    if start is None:
        raise LookupError(f"no lineage row for asset {asset!r} partition {partition!r} (row {key})")
    chain = [
        dict(r)
        for r in conn.execute(
            sql_text("common/lineage_trace"), {"lineage_id": start.id, "max_depth": max_depth}
        ).mappings()
    ]
    leaves = {
        (e["asset_key"], e.get("partition"))
        for node in chain
        for e in node["upstream"]
        if e["asset_key"] in SOURCE_ASSETS
    }
    sources = [
        src for asset_key, part in sorted(leaves, key=str) for src in source_rows(conn, asset_key, part)
    ]
    return Trace(
        start={"table": table, "key": key, "asset_key": asset, "partition": partition},
        chain=chain,
        sources=sources,
    )


def source_rows(conn: sa.Connection, asset_key: str, partition: str | None) -> list[dict[str, Any]]:
    """What a source asset's partition was made of: exchange requests answered and files loaded."""
    if partition is None:
        return []
    start = datetime.fromisoformat(partition).replace(tzinfo=UTC)
    end = start + DAY
    out: list[dict[str, Any]] = []
    if asset_key == "ohlcv":
        cov = conn.execute(
            sa.select(Coverage).where(
                Coverage.dataset == "ohlcv", Coverage.range_start < end, Coverage.range_end > start
            )
        ).mappings()
        out += [
            {
                "kind": "exchange",
                "asset_key": asset_key,
                "partition": partition,
                "source": c["source"],
                "exchange": c["exchange"],
                "symbol": c["symbol"],
                "interval": c["interval"],
                "range": [c["range_start"].isoformat(), c["range_end"].isoformat()],
                "rows": c["rows"],
                "run_id": c["run_id"],
            }
            for c in cov
        ]
    files = conn.execute(
        sa.select(IngestFile).where(IngestFile.first_time < end, IngestFile.last_time >= start)
    ).mappings()
    out += [
        {
            "kind": "file",
            "asset_key": "historical_files",
            "partition": partition,
            "path": f["path"],
            "sha256": f["sha256"],
            "rows": f["rows_loaded"],
            "run_id": f["run_id"],
        }
        for f in files
    ]
    return out


def ohlcv_sources_in(conn: sa.Connection, start: datetime, end: datetime) -> list[str]:
    """Distinct `ohlcv.source` labels of candles in [start, end) (which feeds a partition mixed)."""
    query = sa.select(Ohlcv.source).where(Ohlcv.time >= start, Ohlcv.time < end).distinct()
    return sorted(s for s in conn.scalars(query) if s)


def upstream_days(
    asset_key: str, start: datetime, end: datetime, versions: dict[str, dict[str, Any]] | None = None
) -> Sequence[dict[str, Any]]:
    """Entries for the daily partitions of `asset_key` read for [start, end), with known versions."""
    versions = versions or {}
    return [
        {
            "asset_key": asset_key,
            "partition": day,
            **versions.get(day, {"data_version": None, "run_id": None}),
        }
        for day in days_between(start, end)
    ]
