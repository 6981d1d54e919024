"""The cold tier on the read side: Parquet files of rows retention exported before dropping them (issue 16).

Layout, written by `resources.maintenance.cold` and readable by pandas, DuckDB and Spark as a hive dataset:

    <root>/table=ohlcv/exchange=binance/symbol=BTC%2FUSDT/interval=1m/price=trade/month=2026-01/<from>_<to>-<sha>.parquet

(partition values URI-encoded: a symbol's `/` becomes `%2F`; tables without `interval` or `price` skip
that level; ohlcv files exported before price kinds existed (migration 0005) have no `price=` level and
hold traded prices).
The files hold the other columns, zstd, sorted by time. `cold_pieces` lists each file; a read asks it
which files overlap the range, then reads only those through `pyarrow.dataset` with the time range pushed
down, and merges them under the database rows: where both tiers hold a key (after `cold restore`), the
database row wins, so a caller sees one continuous series without duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from market_warehouse.resources.models import TRADE_PRICE
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.ops.frames import fetch_arrow

# Hive levels under table=<name>, in order, for the columns a table has; then month=YYYY-MM.
PARTITION_COLUMNS = ("exchange", "symbol", "interval", "price")
MONTH = "month"
TABLE = "table"
DATABASE, COLD = "database", "cold"
TIERS_KEY = b"mw.tiers"  # Arrow schema metadata: where each part of a read came from (JSON)


def filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and root path of a cold location (a folder, `file://…`, `s3://…`, `memory://…`).

    A plain folder is made absolute, so the manifest names the same place whatever the working directory.
    """
    if "://" not in location:
        location = str(Path(location).expanduser().resolve())
    fs, root = fsspec.core.url_to_fs(location)
    return fs, root.rstrip("/") or "/"


def arrow_filesystem(fs: fsspec.AbstractFileSystem) -> pafs.FileSystem:
    """pyarrow's own local filesystem for folders (faster), fsspec's handler for anything else."""
    if "file" in ({fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def partition_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The hive levels of a table with `columns` (between table= and month=)."""
    return tuple(c for c in PARTITION_COLUMNS if c in columns)


def cold_files(
    conn: Any,
    table: str,
    start: datetime,
    end: datetime,
    exchange: str | None = None,
    symbols: Sequence[str] | None = None,
    interval: str | None = None,
    price: str | None = None,
) -> pa.Table:
    """Manifest rows (root, path, series, time bounds, rows, sha256) of the files overlapping [start, end)
    (of one price kind of candles when `price` is given)."""
    params = {
        "table_name": table,
        "exchange": exchange,
        "symbols": list(symbols) if symbols is not None else None,
        "interval": interval,
        "price": price,
        "start": start,
        "end": end,
    }
    return fetch_arrow(conn, sql_text("common/cold_files"), params)


def read_files(
    files: pa.Table,
    schema: pa.Schema,
    start: datetime,
    end: datetime,
    symbols: Sequence[str] | None = None,
) -> pa.Table:
    """Rows of the listed files with time in [start, end) (and `symbols`), as `schema`; filters pushed down.

    One `pyarrow.dataset` per cold root, over exactly the listed files, hive partitioning restoring the
    partition columns; row groups outside the range are skipped by their statistics.
    """
    parts: list[pa.Table] = []
    for root in sorted(set(files.column("root").to_pylist())):
        fs, base = filesystem(root)
        paths = [
            f"{base}/{p}"
            for r, p in zip(files.column("root").to_pylist(), files.column("path").to_pylist(), strict=True)
            if r == root
        ]
        levels = [TABLE, *partition_columns(schema.names), MONTH]
        partitioning = ds.partitioning(pa.schema([(c, pa.string()) for c in levels]), flavor="hive")
        dataset = ds.dataset(
            paths,
            format="parquet",
            filesystem=arrow_filesystem(fs),
            partitioning=partitioning,
            partition_base_dir=base,
        )
        condition = (ds.field("time") >= pa.scalar(start, pa.timestamp("us", "UTC"))) & (
            ds.field("time") < pa.scalar(end, pa.timestamp("us", "UTC"))
        )
        if symbols is not None and "symbol" in schema.names:
            condition &= ds.field("symbol").isin(list(symbols))
        table = dataset.to_table(columns=list(schema.names), filter=condition)
        if "price" in table.column_names:  # a file of before migration 0005: traded prices
            position = table.column_names.index("price")
            filled = pc.fill_null(table.column("price"), TRADE_PRICE)
            table = table.set_column(position, "price", filled)
        parts.append(table.cast(schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def merge_tiers(
    hot: pa.Table,
    cold: pa.Table,
    keys: Sequence[str],
    order: Sequence[str],
    limit: int | None,
    series: Sequence[str] = ("symbol",),
) -> pa.Table:
    """`hot` (database) and `cold` rows as one table ordered by `order`, the database row kept where both
    hold a key, at most `limit` rows per `series` (the limit of the reads is per series), with the part
    each tier gave in the schema metadata (`TIERS_KEY`, see `tiers`)."""
    if cold.num_rows:
        held = pc.is_in(_key(cold, keys), value_set=_key(hot, keys)) if hot.num_rows else None
        if held is not None:
            cold = cold.filter(pc.invert(held))
    marked = [
        t.append_column("_tier", pa.array([name] * t.num_rows, pa.string()))
        for t, name in ((cold, COLD), (hot, DATABASE))
    ]
    merged = pa.concat_tables(marked).sort_by([(c, "ascending") for c in order])
    if limit is not None:
        merged = _head_per_series(merged, list(series), limit)
    summary = _tier_summary(merged, list(series))
    merged = merged.drop_columns(["_tier"])
    metadata = dict(merged.schema.metadata or {})
    metadata[TIERS_KEY] = json.dumps(summary).encode()
    return merged.replace_schema_metadata(metadata)


def tiers(table: pa.Table) -> list[dict[str, Any]]:
    """Where the parts of a read came from: [{"tier": "cold" | "database", "symbol", "from", "to", "rows"}]
    in time order per series; empty when the read did not reach the cold tier."""
    raw = (table.schema.metadata or {}).get(TIERS_KEY)
    return json.loads(raw) if raw else []


def _key(table: pa.Table, keys: Sequence[str]) -> pa.Array:
    """One string per row identifying its key (the column values joined): `is_in` takes a single array."""
    columns = [pc.cast(table.column(k), pa.string()) for k in keys]
    return pc.binary_join_element_wise(*columns, "\x1f")


def _head_per_series(table: pa.Table, series: list[str], limit: int) -> pa.Table:
    """The first `limit` rows of each series (the table is sorted by series first)."""
    starts = _run_starts(table, series)
    index = np.arange(table.num_rows)
    first = np.maximum.accumulate(np.where(starts, index, 0))
    return table.filter(pa.array(index - first < limit))


def _run_starts(table: pa.Table, columns: list[str]) -> np.ndarray:
    """True where a row's values of `columns` differ from the previous row's (and at the first row)."""
    starts = np.zeros(table.num_rows, dtype=bool)
    if table.num_rows:
        starts[0] = True
    for column in columns:
        values = pc.cast(table.column(column), pa.string()).to_numpy(zero_copy_only=False)
        starts[1:] |= values[1:] != values[:-1]
    return starts


def _tier_summary(table: pa.Table, series: list[str]) -> list[dict[str, Any]]:
    """Runs of consecutive rows of one tier within each series: [{tier, <series>, from, to, rows}]."""
    starts = np.flatnonzero(_run_starts(table, [*series, "_tier"]))
    ends = np.append(starts[1:], table.num_rows) - 1
    names = [*series, "_tier"]
    heads = table.take(pa.array(starts)).select([*names, "time"]).to_pylist()
    lasts = table.take(pa.array(ends)).column("time").to_pylist()
    return [
        {
            "tier": head["_tier"],
            **{c: head[c] for c in series},
            "from": head["time"].isoformat(),
            "to": last.isoformat(),
            "rows": int(stop - begin + 1),
        }
        for head, last, begin, stop in zip(heads, lasts, starts, ends, strict=True)
    ]


def with_tiers(frame: Any, table: pa.Table) -> Any:
    """`frame` (a DataFrame of `table`) with `attrs["tiers"]` when the read reached the cold tier."""
    summary = tiers(table)
    if summary:
        frame.attrs["tiers"] = summary
    return frame
