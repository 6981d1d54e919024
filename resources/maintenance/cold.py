"""The cold tier on the write side: export a piece to Parquet before retention drops it, and restore it.

`export_piece` runs inside retention's transaction, after the piece is locked against writes: it reads the
rows retention is about to remove, writes one Parquet file per series and month (hive layout of
`resources.warehouse.cold`, zstd, rows sorted by time) to a temporary name, renames it, re-reads it and
checks its SHA-256 and row count, then lists each file in `cold_pieces` in the same transaction as the drop.
Any failure raises `ColdExportError` before anything is dropped. The file name ends with the content's hash,
so exporting the same rows again finds the same file and writes nothing.

`restore` loads files back through the upsert engine: a second restore of the same range writes 0 rows.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from market_warehouse.resources.maintenance.pieces import Piece
from market_warehouse.resources.models import TIMESERIES, Base, ColdPiece
from market_warehouse.resources.warehouse.cold import (
    MONTH,
    TABLE,
    cold_files,
    filesystem,
    partition_columns,
    read_files,
)
from market_warehouse.resources.warehouse.ops.frames import read_schema
from market_warehouse.resources.warehouse.upsert import INGEST_COLUMNS, UpsertResult, upsert_dataframe

ROW_GROUP_ROWS = 128 * 1024
# Columns that order the rows of a file after time (the rest of the primary key of tables with ties).
TIE_BREAKERS = ("trade_id",)


class ColdExportError(RuntimeError):
    """The export of a piece failed or did not verify: retention keeps the piece."""


@dataclass(frozen=True)
class ColdFile:
    """One Parquet file of a piece's export; `written` is False when an identical file was already there."""

    path: str  # relative to the root
    series: dict[str, str | None]
    month: str
    rows: int
    bytes: int
    sha256: str
    min_time: datetime
    max_time: datetime
    written: bool


@dataclass
class ColdExport:
    """A piece's export: where, which files, how many rows and bytes."""

    root: str
    files: list[ColdFile] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def record(self) -> dict[str, object]:
        """For system_events and run metadata (the location's password, if any, never appears)."""
        return {
            "files": len(self.files),
            "files_written": sum(f.written for f in self.files),
            "rows": self.rows,
            "bytes": self.bytes,
        }


def table_columns(table: str) -> list[str]:
    """The columns a cold file holds: the data, not the database's write time (`ingested_at`), which a
    restore sets anew: the same rows then export to the same bytes, hence the same file."""
    return [c.name for c in Base.metadata.tables[table].columns if c.name not in INGEST_COLUMNS]


def piece_rows(conn: sa.Connection, piece: Piece, intervals: tuple[str, ...]) -> pa.Table:
    """The rows retention removes from `piece` (of `intervals` only, when not empty), as Arrow."""
    spec = TIMESERIES[piece.table]
    t = Base.metadata.tables[piece.table]
    columns = table_columns(piece.table)
    time = t.c[spec.time_column]
    stmt = sa.select(*(t.c[c] for c in columns)).where(time >= piece.start, time < piece.end)
    if intervals:
        stmt = stmt.where(t.c["interval"].in_(intervals))
    result = conn.execute(stmt)
    rows = result.all()
    schema = read_schema(piece.table, columns)
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pa.table(
        {c: pa.array(list(v), type=schema.field(c).type) for c, v in zip(columns, data, strict=True)}
    )


def export_piece(
    conn: sa.Connection,
    piece: Piece,
    location: str,
    expected_rows: int,
    intervals: tuple[str, ...] = (),
    run_id: str | None = None,
) -> ColdExport:
    """Write the rows retention removes from `piece` to `location`, verify, list the files in cold_pieces.

    Runs in the caller's transaction (the one that drops): the manifest rows commit with the drop or not at
    all. Raises `ColdExportError` when anything fails or the files do not hold `expected_rows` rows.
    """
    try:
        fs, root = filesystem(location)
        rows = piece_rows(conn, piece, intervals)
        if rows.num_rows != expected_rows:
            raise ColdExportError(f"read {rows.num_rows} rows of {piece.name}, expected {expected_rows}")
        export = ColdExport(root=_root_label(location, fs, root))
        for relative, series, month, part in _files(piece, rows):
            export.files.append(_write_verified(fs, root, relative, series, month, part))
    except ColdExportError:
        raise
    except Exception as exc:  # any storage error: the piece stays, the step reports it
        raise ColdExportError(f"{type(exc).__name__}: {exc}") from exc
    if export.rows != expected_rows:
        raise ColdExportError(f"files hold {export.rows} rows, the piece {expected_rows}")
    _record(conn, piece, export, run_id)
    return export


def _root_label(location: str, fs, root: str) -> str:
    """The root as the manifest stores it: an absolute folder, or the URL with its protocol."""
    if "://" not in location:
        return root
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{root.lstrip('/')}" if protocol != "file" else root


def _files(piece: Piece, rows: pa.Table):
    """(relative path, series values, month, rows sorted by time without the partition columns) per file."""
    spec = TIMESERIES[piece.table]
    levels = list(partition_columns(rows.column_names))
    month = pc.strftime(rows.column(spec.time_column), format="%Y-%m")
    rows = rows.append_column(MONTH, month)
    ties = [c for c in TIE_BREAKERS if c in rows.column_names]
    rows = rows.sort_by([(c, "ascending") for c in [*levels, MONTH, spec.time_column, *ties]])
    groups = rows.group_by([*levels, MONTH], use_threads=False).aggregate([]).to_pylist()
    for group in groups:
        mask = None
        for column, value in group.items():
            test = pc.is_null(rows.column(column)) if value is None else pc.equal(rows.column(column), value)
            mask = test if mask is None else pc.and_(mask, test)
        part = rows.filter(mask).drop_columns([*levels, MONTH])
        directories = [f"{TABLE}={piece.table}"] + [
            f"{c}={quote(str(group[c]) if group[c] is not None else '__HIVE_DEFAULT_PARTITION__', safe='')}"
            for c in levels
        ]
        directories.append(f"{MONTH}={group[MONTH]}")
        name = f"{piece.start:%Y%m%dT%H%M%S}_{piece.end:%Y%m%dT%H%M%S}"
        yield "/".join(directories), {c: group[c] for c in levels}, group[MONTH], (name, part)


def _write_verified(fs, root: str, directory: str, series, month: str, named) -> ColdFile:
    """Serialize, write under a temporary name, rename, re-read: the hash and the row count must match."""
    name, part = named
    sink = pa.BufferOutputStream()
    pq.write_table(part, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    data = sink.getvalue().to_pybytes()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{directory}/{name}-{digest[:16]}.parquet"
    final = f"{root}/{relative}"
    written = not (fs.exists(final) and hashlib.sha256(fs.cat_file(final)).hexdigest() == digest)
    if written:
        fs.makedirs(f"{root}/{directory}", exist_ok=True)
        temporary = f"{root}/{directory}/.{name}.{uuid.uuid4().hex}.tmp"
        fs.pipe_file(temporary, data)
        fs.mv(temporary, final)
    back = fs.cat_file(final)
    if hashlib.sha256(back).hexdigest() != digest:
        raise ColdExportError(f"{relative}: the file read back differs from what was written")
    if pq.ParquetFile(pa.BufferReader(back)).metadata.num_rows != part.num_rows:
        raise ColdExportError(f"{relative}: row count read back differs")
    times = part.column("time")
    return ColdFile(
        path=relative,
        series=series,
        month=month,
        rows=part.num_rows,
        bytes=len(data),
        sha256=digest,
        min_time=pc.min(times).as_py(),
        max_time=pc.max(times).as_py(),
        written=written,
    )


def _record(conn: sa.Connection, piece: Piece, export: ColdExport, run_id: str | None) -> None:
    """The files in cold_pieces (a file already listed, same root and path = same content, is kept)."""
    if not export.files:
        return
    values = [
        {
            "table_name": piece.table,
            "piece": f"{piece.schema}.{piece.name}",
            "range_start": piece.start,
            "range_end": piece.end,
            "exchange": f.series.get("exchange"),
            "symbol": f.series.get("symbol"),
            "interval": f.series.get("interval"),
            "price": f.series.get("price"),
            "month": f.month,
            "min_time": f.min_time,
            "max_time": f.max_time,
            "root": export.root,
            "path": f.path,
            "rows": f.rows,
            "bytes": f.bytes,
            "sha256": f.sha256,
            "run_id": run_id,
        }
        for f in export.files
    ]
    stmt = pg_insert(ColdPiece.__table__).values(values)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["root", "path"]))


def read_cold(
    conn: sa.Connection,
    table: str,
    start: datetime,
    end: datetime,
    exchange: str | None = None,
    symbol: str | None = None,
) -> pa.Table:
    """Every cold row of `table` with time in [start, end) (of one exchange / symbol when given)."""
    columns = table_columns(table)
    files = cold_files(conn, table, start, end, exchange, [symbol] if symbol else None)
    schema = read_schema(table, columns)
    rows = read_files(files, schema, start, end)
    if exchange is not None and "exchange" in columns:
        rows = rows.filter(pc.equal(rows.column("exchange"), exchange))
    return rows


def restore(
    engine: sa.Engine,
    table: str,
    start: datetime,
    end: datetime,
    exchange: str | None = None,
    symbol: str | None = None,
) -> UpsertResult:
    """Load the cold rows of [start, end) back into the database through the upsert (idempotent: rows
    already there and equal are left alone). The files stay: the manifest keeps describing them."""
    if table not in TIMESERIES:
        raise ValueError(f"{table!r} is not a time-series table (known: {', '.join(sorted(TIMESERIES))})")
    with engine.connect() as conn:
        rows = read_cold(conn, table, start, end, exchange, symbol)
    frame = rows.to_pandas()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC")
    return upsert_dataframe(engine, table, frame)
