"""Bulk upsert of pandas DataFrames into time-series tables: the hot path of every load.

The whole frame is validated before anything is written, ordered by chunk, series and time, and cut into
batches of one transaction each. A batch is encoded once, Arrow → PostgreSQL *binary* COPY by pgpq (Rust: no
per-value Python, no float or timestamp text to format and parse, exact round trip), then written by one of
three paths:

- its series have no stored row in its time range (the usual append): COPY straight into the table;
- otherwise COPY into a temp staging table and one statement: `UPDATE … FROM staging WHERE (cols) IS
  DISTINCT FROM (staged cols)` + `INSERT … WHERE NOT EXISTS` (+ dirty windows, + audit on request);
- on TimescaleDB with compression, `INSERT … ON CONFLICT … DO UPDATE … WHERE (cols) IS DISTINCT FROM
  (excluded cols)` instead, which decompresses only the compressed batches holding conflicting keys.

Unchanged rows cost no write, so re-running a load writes nothing. `benchmarks/upsert.py` measures every
path against raw COPY, CSV serialization, `to_sql` and row-by-row inserts (figures in the README).

Concurrency: every batch takes one transaction-scoped advisory lock per (table, chunk-interval bucket) it
touches, in ascending order, so two loads of overlapping ranges serialize instead of interleaving or
deadlocking, the range probe and the counts stay exact, and the primary key refuses duplicates from any
writer that bypasses the locks (its batch fails whole).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pgpq import ArrowToPostgresBinaryEncoder
from pgpq import encoders as pgpq_encoders
from pgpq import schema as pgpq_schema
from psycopg2 import sql as pgsql

from market_warehouse.resources.backend import Capabilities, detect
from market_warehouse.resources.columns import BadValues, arrow_type, kind_of, numeric_bounds, to_storage
from market_warehouse.resources.models import TIMESERIES, Base
from market_warehouse.resources.models.base import TimeseriesSpec
from market_warehouse.resources.partitioning import ensure_partitions
from market_warehouse.resources.sqlfiles import load_sql, sql_text

# Ingest timestamps say when *we* stored a row: refreshed when the row changes, never compared.
INGEST_COLUMNS = frozenset({"ingested_at", "computed_at"})
# Tables whose 1h/1d aggregates are refreshed incrementally from `aggregate_dirty_windows`.
DIRTY_WINDOW_TABLES: set[str] = {"ohlcv"}
DEFAULT_BATCH_ROWS = 100_000
# TimescaleDB compresses at most 1,000 rows per compressed batch, so one offered row decompresses at most
# that many tuples: the per-transaction limit is sized from the batch rather than switched off.
_MAX_ROWS_PER_COMPRESSED_BATCH = 1_000
_SHOWN_ROWS = 5
_STAGE = pgsql.Identifier("pg_temp", "mw_upsert_stage")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did; `rows == inserted + updated + unchanged` (collapsed duplicates are unchanged)."""

    table: str
    rows: int  # rows offered
    inserted: int
    updated: int
    unchanged: int
    batches: int
    min_time: datetime | None
    max_time: datetime | None

    @classmethod
    def empty(cls, table: str) -> UpsertResult:
        return cls(table, 0, 0, 0, 0, 0, None, None)

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    def __add__(self, other) -> UpsertResult:
        if not isinstance(other, UpsertResult):
            return NotImplemented
        if other.table != self.table:
            raise ValueError(f"cannot add upsert results of {self.table!r} and {other.table!r}")
        return UpsertResult(
            table=self.table,
            rows=self.rows + other.rows,
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            batches=self.batches + other.batches,
            min_time=_opt(min, self.min_time, other.min_time),
            max_time=_opt(max, self.max_time, other.max_time),
        )

    def __radd__(self, other) -> UpsertResult:
        if other == 0:  # sum(results)
            return self
        return NotImplemented


def _opt(pick, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


class UpsertInputError(ValueError):
    """A frame that cannot be stored as it is; nothing was written.

    `rows` holds the index labels of *all* offending rows so that a caller can quarantine them; the message
    shows the first few with their key values.
    """

    def __init__(self, table: str, columns: Iterable[str], rule: str, rows=(), shown: str = ""):
        self.table = table
        self.columns = tuple(columns)
        self.rule = rule
        self.rows = list(rows)
        self.shown = shown
        message = f"{table}: column(s) {', '.join(self.columns) or '-'}: {rule}"
        if self.rows:
            message += f"; {len(self.rows)} offending row(s), first: {shown}"
        super().__init__(message)

    def __reduce__(self):  # picklable across processes despite the custom signature
        return (self.__class__, (self.table, self.columns, self.rule, self.rows, self.shown))


@dataclass(frozen=True)
class AuditContext:
    """Who changes stored rows and why: written to `audit_log` and `timeseries_archive`."""

    changed_by: str
    reason: str


def track_dirty_windows(table: str, enabled: bool = True) -> None:
    """Record (or stop recording) the hours touched by upserts into `table` for its aggregates' refresh."""
    _table_meta(table)
    if enabled:
        DIRTY_WINDOW_TABLES.add(table)
    else:
        DIRTY_WINDOW_TABLES.discard(table)


# --------------------------------------------------------------------------------------------------------
# Table metadata from the SQLAlchemy models


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # timestamp, float8, float4, int8, int4, int2, numeric, bool, text, jsonb
    nullable: bool
    required: bool  # must be in every frame: part of the key, or NOT NULL without a default
    compared: bool  # takes part in IS DISTINCT FROM
    key_default: str | None = None  # key column a frame may omit (model `info`): filled with this value
    precision: int = 38  # numeric only (`numeric_bounds`)
    scale: int = 10


@dataclass(frozen=True)
class _Table:
    name: str
    spec: TimeseriesSpec
    columns: dict[str, _Column]  # in table order
    key: tuple[str, ...]
    ingest: tuple[str, ...]


_TABLES: dict[str, _Table] = {}


def _table_meta(name: str) -> _Table:
    """Key, columns and comparison rules of a time-series table, derived from its model once."""
    if name in _TABLES:
        return _TABLES[name]
    spec = TIMESERIES.get(name)
    if spec is None or name not in Base.metadata.tables:
        known = ", ".join(sorted(TIMESERIES))
        raise UpsertInputError(name, [], f"not a time-series table (known: {known})")
    table = Base.metadata.tables[name]
    key = tuple(c.name for c in table.primary_key.columns)
    columns = {}
    for col in table.columns:
        kind = kind_of(col)
        has_default = col.server_default is not None or col.identity is not None
        columns[col.name] = _Column(
            name=col.name,
            kind=kind,
            nullable=bool(col.nullable) and col.name not in key,
            required=(col.name in key and "key_default" not in col.info)
            or (not col.nullable and not has_default),
            compared=col.name not in key and col.name not in INGEST_COLUMNS and col.identity is None,
            key_default=col.info.get("key_default"),
            **(
                dict(zip(("precision", "scale"), numeric_bounds(col), strict=True))
                if kind == "numeric"
                else {}
            ),
        )
    ingest = tuple(c for c in columns if c in INGEST_COLUMNS)
    meta = _Table(name, spec, columns, key, ingest)
    _TABLES[name] = meta
    return meta


# --------------------------------------------------------------------------------------------------------
# Validation: every rule is checked before anything is written


def _describe(
    frame: pd.DataFrame, mask: np.ndarray, meta: _Table, columns: Iterable[str]
) -> tuple[list, str]:
    """Labels of all offending rows and a text showing the first few with their key and offending values."""
    positions = np.flatnonzero(mask)
    labels = frame.index[positions].tolist()
    shown_columns = list(dict.fromkeys([*(c for c in meta.key if c in frame.columns), *columns]))
    shown_columns = [c for c in shown_columns if c in frame.columns]
    parts = []
    for pos in positions[:_SHOWN_ROWS]:
        values = ", ".join(f"{c}={_show(frame.iat[pos, frame.columns.get_loc(c)])}" for c in shown_columns)
        parts.append(f"[{_show(frame.index[pos])}] {values}")
    return labels, "; ".join(parts)


def _show(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _reject(meta: _Table, frame: pd.DataFrame, columns: list[str], rule: str, mask) -> UpsertInputError:
    labels, shown = _describe(frame, np.asarray(mask, dtype=bool), meta, columns)
    return UpsertInputError(meta.name, columns, rule, labels, shown)


def validate_frame(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Check `frame` against `table`'s model and return it ready for COPY.

    Raises `UpsertInputError` naming the table, the column(s), the rule and the first offending rows for:
    unknown or missing columns, values of the wrong type, naive timestamps, nulls in NOT NULL columns and
    duplicate keys whose rows differ. Rows repeated identically are collapsed to one (they would store the
    same thing). The result has the table's column order, UTC microsecond timestamps, exact integer and
    decimal types and JSON as text; its index is the caller's, so errors and quarantines can name rows.
    """
    meta = _table_meta(table)
    if not isinstance(frame, pd.DataFrame):
        raise UpsertInputError(table, [], f"expected a pandas DataFrame, got {type(frame).__name__}")
    names = [str(c) for c in frame.columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise UpsertInputError(table, repeated, "column given more than once")
    unknown = [c for c in names if c not in meta.columns]
    if unknown:
        raise UpsertInputError(table, unknown, f"unknown column(s): {table} has {', '.join(meta.columns)}")
    missing = [c for c, col in meta.columns.items() if col.required and c not in names]
    if missing:
        raise UpsertInputError(
            table,
            missing,
            f"missing required column(s) (key: {', '.join(meta.key)}; or NOT NULL without default)",
        )
    frame = frame.rename(columns=str)
    defaults = {c: col.key_default for c, col in meta.columns.items() if col.key_default and c not in names}
    if defaults:  # e.g. ohlcv's price kind: candles given without one are traded prices
        frame = frame.assign(**defaults)
    converted = {}
    for name, col in meta.columns.items():
        if name not in frame.columns:
            continue
        try:
            series = to_storage(frame[name], col.kind, col.precision, col.scale)
        except BadValues as bad:
            raise _reject(meta, frame, [name], bad.rule, bad.mask) from None
        if not col.nullable:
            nulls = series.isna().to_numpy()
            if nulls.any():
                raise _reject(meta, frame, [name], "null (or NaN) in a NOT NULL column", nulls)
        converted[name] = series
    out = pd.DataFrame(converted, index=frame.index)
    return _collapse_duplicates(meta, out)


def _collapse_duplicates(meta: _Table, frame: pd.DataFrame) -> pd.DataFrame:
    key = list(meta.key)
    # A 64-bit hash of the key finds candidates several times faster than comparing the columns; only
    # rows whose hash repeats are compared exactly (a hash collision is then not a duplicate).
    hashes = pd.util.hash_pandas_object(frame[key], index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    if not candidates.any():
        return frame
    dup_key = np.zeros(len(frame), dtype=bool)
    dup_key[candidates] = frame[candidates].duplicated(subset=key, keep=False).to_numpy()
    if not dup_key.any():
        return frame
    distinct = frame[dup_key].drop_duplicates()
    conflicting = distinct.duplicated(subset=key, keep=False)
    if conflicting.any():
        bad_keys = pd.MultiIndex.from_frame(distinct.loc[conflicting, key])
        mask = pd.MultiIndex.from_frame(frame[key]).isin(bad_keys)
        first = distinct.loc[conflicting].iloc[:1][key].merge(distinct, on=key)
        differ = [c for c in frame.columns if c not in key and first[c].nunique(dropna=False) > 1]
        raise _reject(
            meta,
            frame,
            [*key, *differ],
            f"duplicate keys with conflicting values (differ in: {', '.join(differ)})",
            mask,
        )
    return frame[~frame.duplicated(subset=key, keep="first").to_numpy()]


# --------------------------------------------------------------------------------------------------------
# Serialization: Arrow → PostgreSQL binary COPY (pgpq)


def _binary_copy_payload(meta: _Table, frame: pd.DataFrame) -> bytes:
    """The frame as one PostgreSQL binary COPY stream whose field types match the target's exactly."""
    cols = [meta.columns[c] for c in frame.columns]
    schema = pa.schema(
        [pa.field(c.name, arrow_type(c.kind, c.precision, c.scale), nullable=True) for c in cols]
    )
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    encoders = {}
    for col, field in zip(cols, schema, strict=True):
        if col.kind == "jsonb":
            encoders[col.name] = pgpq_encoders.LargeStringEncoderBuilder.new_with_output(
                field, pgpq_schema.Jsonb()
            )
        else:
            encoders[col.name] = ArrowToPostgresBinaryEncoder.infer_encoder(field)
    encoder = ArrowToPostgresBinaryEncoder.new_with_encoders(schema, encoders)
    parts = [encoder.write_header()]
    parts.extend(encoder.write_batch(batch) for batch in table.to_batches())
    parts.append(encoder.finish())
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------------
# Writing


def _server(conn: sa.Connection) -> tuple[Capabilities, tuple[int, ...]]:
    """Backend capabilities and server version, detected once per pooled DBAPI connection."""
    info = conn.connection.info
    cached = info.get("mw_upsert_server")
    if cached is None:
        cached = (detect(conn), tuple(conn.dialect.server_version_info or (0,)))
        info["mw_upsert_server"] = cached
    return cached


def _compose(name: str, **parts: pgsql.Composable) -> pgsql.Composed:
    return pgsql.SQL(load_sql(f"common/{name}")).format(**parts)


def _names(names: Iterable[str], alias: str | None = None) -> pgsql.Composed:
    return pgsql.SQL(", ").join(pgsql.Identifier(alias, n) if alias else pgsql.Identifier(n) for n in names)


def _to_micros(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[us]").view(np.int64)


def _buckets(micros: np.ndarray, interval: timedelta) -> np.ndarray:
    step = int(interval / timedelta(microseconds=1))
    return np.unique(np.floor_divide(micros, step))


def _lock_and_prepare(conn, meta: _Table, caps: Capabilities, buckets: np.ndarray) -> None:
    """Advisory locks of the batch's buckets (ascending), then the native partitions covering them."""
    conn.execute(
        sql_text("common/upsert_lock"), {"table_name": meta.name, "buckets": [int(b) for b in buckets]}
    )
    if not caps.native_partitions:
        return
    step = meta.spec.chunk_interval
    # One call per run of consecutive buckets: rows far apart never create the partitions in between.
    breaks = np.flatnonzero(np.diff(buckets) != 1) + 1
    for run in np.split(buckets, breaks):
        ensure_partitions(conn, caps, meta.spec, _EPOCH + int(run[0]) * step, _EPOCH + int(run[-1]) * step)


# Merge strategies: "join" (UPDATE … FROM staging + INSERT of the anti-join) everywhere chunks cannot be
# compressed; "on_conflict" (INSERT … ON CONFLICT) where they can, since a conflict decompresses only the
# compressed batch holding the key while a join would decompress whole chunks.
STRATEGIES = ("join", "on_conflict", "on_conflict_pre18")


def _strategy(caps: Capabilities, version: tuple[int, ...]) -> str:
    if not caps.compression:
        return "join"
    return "on_conflict" if version >= (18,) else "on_conflict_pre18"


def _merge_statement(meta: _Table, columns: list[str], strategy: str, audit: bool) -> pgsql.Composed:
    compared = [c for c in columns if meta.columns[c].compared]
    updated = compared + [c for c in meta.ingest if c not in compared]
    key = list(meta.key)
    target, time_column = pgsql.Identifier(meta.name), pgsql.Identifier(meta.spec.time_column)
    joins = {"target_key": _names(key, "t"), "stage_key": _names(key, "s")}
    audit_ctes = pgsql.SQL("")
    if audit and compared:
        audit_ctes = _compose(
            "upsert_audit",
            stage=_STAGE,
            target=target,
            time_column=time_column,
            target_compare=_names(compared, "t"),
            stage_compare=_names(compared, "s"),
            **joins,
        )
    dirty = pgsql.SQL(load_sql("common/upsert_dirty")) if meta.name in DIRTY_WINDOW_TABLES else pgsql.SQL("")
    common = {
        "audit": audit_ctes,
        "target": target,
        "stage": _STAGE,
        "columns": _names(columns),
        "time_column": time_column,
        "dirty": dirty,
        **joins,
    }
    if strategy == "join":
        if compared:
            update = _compose(
                "upsert_update",
                target=target,
                stage=_STAGE,
                update_columns=_names(updated),
                stage_update_columns=_names(updated, "s"),
                target_compare=_names(compared, "t"),
                stage_compare=_names(compared, "s"),
                time_column=time_column,
                **joins,
            )
        else:
            update = _compose("upsert_update_none")
        return _compose("upsert_merge", update=update, **common)
    if compared:
        on_conflict = _compose(
            "upsert_on_conflict_update",
            key=_names(key),
            update_columns=_names(updated),
            excluded_update_columns=_names(updated, "excluded"),
            target_compare=_names(compared, "t"),
            excluded_compare=_names(compared, "excluded"),
        )
    else:
        on_conflict = _compose("upsert_on_conflict_nothing", key=_names(key))
    template = "upsert_merge_on_conflict" if strategy == "on_conflict" else "upsert_merge_on_conflict_pre18"
    return _compose(template, on_conflict=on_conflict, **common)


_MAX_LISTED_SERIES = 1_000


def _series_json(meta: _Table, frame: pd.DataFrame) -> tuple[list[str], str] | None:
    """The batch's series (key without time) with their first and last time, as JSON rows for the range
    probe; None when there are too many series to list (then the batch's whole time range is probed)."""
    columns = [c for c in meta.key if c != meta.spec.time_column]
    if not columns:
        return [], "[]"
    bounds = frame.groupby(columns, sort=False, dropna=False)[meta.spec.time_column].agg(["min", "max"])
    if len(bounds) > _MAX_LISTED_SERIES:
        return None
    bounds = bounds.rename(columns={"min": "mw_from", "max": "mw_to"}).reset_index()
    return columns, bounds.to_json(orient="records", date_format="iso", date_unit="us")


def _range_is_new(conn, meta: _Table, batch: _Batch) -> bool:
    """True when no stored row shares the batch's series and time range: every row is then new."""
    dbapi = conn.connection.dbapi_connection
    target, time_column = pgsql.Identifier(meta.name), pgsql.Identifier(meta.spec.time_column)
    listed = batch.series
    params = {"min_time": batch.min_time, "max_time": batch.max_time}
    if listed is None or not listed[0]:
        statement = _compose("upsert_range_is_empty", target=target, time_column=time_column)
    else:
        statement = _compose(
            "upsert_range_is_new",
            target=target,
            time_column=time_column,
            target_series=_names(listed[0], "t"),
            record_series=_names(listed[0], "r"),
        )
        params["series"] = listed[1]
    return bool(conn.exec_driver_sql(statement.as_string(dbapi), params).scalar())


def _record_dirty_hours(conn, meta: _Table, micros: np.ndarray) -> None:
    hour = 3_600_000_000
    hours = [_EPOCH + timedelta(microseconds=int(h) * hour) for h in np.unique(np.floor_divide(micros, hour))]
    conn.execute(sql_text("common/upsert_dirty_hours"), {"table_name": meta.name, "hours": hours})


def _copy(conn, statement: pgsql.Composed, payload: bytes) -> None:
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cursor:
        cursor.copy_expert(statement.as_string(dbapi), io.BytesIO(payload), size=1 << 20)


@dataclass(frozen=True)
class _Batch:
    """Everything about a batch that needs no database: computed ahead while the previous batch writes."""

    frame: pd.DataFrame
    micros: np.ndarray
    buckets: np.ndarray
    min_time: datetime
    max_time: datetime
    series: tuple[list[str], str] | None
    payload: bytes


def _prepare(meta: _Table, frame: pd.DataFrame) -> _Batch:
    times = frame[meta.spec.time_column]
    micros = _to_micros(times)
    return _Batch(
        frame=frame,
        micros=micros,
        buckets=_buckets(micros, meta.spec.chunk_interval),
        min_time=times.min().to_pydatetime(),
        max_time=times.max().to_pydatetime(),
        series=_series_json(meta, frame),
        payload=_binary_copy_payload(meta, frame),
    )


def _upsert_validated(
    conn: sa.Connection,
    meta: _Table,
    frame: pd.DataFrame,
    audit: AuditContext | None,
    *,
    strategy: str | None = None,
    direct: bool = True,
) -> UpsertResult:
    """One batch of an already validated frame, in the caller's transaction."""
    if frame.empty:
        return UpsertResult.empty(meta.name)
    return _write(conn, meta, _prepare(meta, frame), audit, strategy=strategy, direct=direct)


def _stage(conn: sa.Connection, meta: _Table, batch: _Batch) -> None:
    """The batch COPYed into the transaction's temp staging table, which the merge statement reads."""
    dbapi = conn.connection.dbapi_connection
    target = pgsql.Identifier(meta.name)
    conn.exec_driver_sql(_compose("upsert_staging_create", stage=_STAGE, target=target).as_string(dbapi))
    columns = _names(batch.frame.columns)
    _copy(conn, _compose("upsert_staging_copy", stage=_STAGE, columns=columns), batch.payload)


def _merge_params(meta: _Table, batch: _Batch, audit: AuditContext | None) -> dict[str, object]:
    """Parameters of `_merge_statement`. psycopg2 interpolates them client-side, so the batch's time range
    reaches the server as constants and the planner prunes partitions (chunks) to the batch's."""
    columns = list(batch.frame.columns)
    params: dict[str, object] = {
        "table_name": meta.name,
        "min_time": batch.min_time,
        "max_time": batch.max_time,
        "offered": len(batch.frame),
    }
    if audit is not None:
        params |= {
            "changed_by": audit.changed_by,
            "reason": audit.reason,
            "non_key_columns": [c for c in meta.columns if c not in meta.key],
            "not_offered_columns": [c for c in meta.columns if c not in columns],
            "compare_columns": [c for c in columns if meta.columns[c].compared],
        }
    return params


def _write(
    conn: sa.Connection,
    meta: _Table,
    batch: _Batch,
    audit: AuditContext | None,
    *,
    strategy: str | None = None,
    direct: bool = True,
) -> UpsertResult:
    """Write one prepared batch in the caller's transaction.

    A batch whose series have no stored row in its time range (the usual append of new data) is COPYed
    straight into the target; any other goes through staging and the merge `strategy` of the backend.
    """
    caps, version = _server(conn)
    strategy = strategy or _strategy(caps, version)
    rows = len(batch.frame)
    _lock_and_prepare(conn, meta, caps, batch.buckets)
    if caps.compression:
        limit = min(rows * _MAX_ROWS_PER_COMPRESSED_BATCH, 2**31 - 1)
        conn.execute(sql_text("timescaledb/upsert_decompression_limit"), {"limit": str(limit)})

    columns = list(batch.frame.columns)
    dbapi = conn.connection.dbapi_connection
    target = pgsql.Identifier(meta.name)
    if direct and _range_is_new(conn, meta, batch):
        _copy(conn, _compose("upsert_direct_copy", target=target, columns=_names(columns)), batch.payload)
        if meta.name in DIRTY_WINDOW_TABLES:
            _record_dirty_hours(conn, meta, batch.micros)
        return UpsertResult(meta.name, rows, rows, 0, 0, 1, batch.min_time, batch.max_time)

    _stage(conn, meta, batch)
    statement = _merge_statement(meta, columns, strategy, audit is not None)
    params = _merge_params(meta, batch, audit)
    inserted, updated = (int(n) for n in conn.exec_driver_sql(statement.as_string(dbapi), params).one())
    conn.exec_driver_sql(_compose("upsert_staging_drop", stage=_STAGE).as_string(dbapi))
    return UpsertResult(
        table=meta.name,
        rows=rows,
        inserted=inserted,
        updated=updated,
        unchanged=rows - inserted - updated,
        batches=1,
        min_time=batch.min_time,
        max_time=batch.max_time,
    )


def _with_collapsed(result: UpsertResult, offered: int) -> UpsertResult:
    """Count rows collapsed as identical duplicates as offered and unchanged."""
    extra = offered - result.rows
    if not extra:
        return result
    return UpsertResult(
        result.table,
        offered,
        result.inserted,
        result.updated,
        result.unchanged + extra,
        result.batches,
        result.min_time,
        result.max_time,
    )


def _load_order(meta: _Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by chunk bucket, then series (key without time), then time.

    Batches then cover compact time ranges (few advisory locks and partitions) and, within a chunk, each
    series' rows are written next to each other: a later read of one series' range touches a few heap
    pages instead of one page per row (interleaved series). Skipped when the frame is already in order.
    """
    if len(frame) < 2:
        return frame
    micros = _to_micros(frame[meta.spec.time_column])
    series = np.zeros(len(frame), dtype=np.int64)  # one code per series: the order among series is irrelevant
    for column in (c for c in meta.key if c != meta.spec.time_column):
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        series = series * len(uniques) + codes
    bucket = np.floor_divide(micros, int(meta.spec.chunk_interval / timedelta(microseconds=1)))
    order = np.lexsort((micros, series, bucket))
    if (np.diff(order) == 1).all():
        return frame
    return frame.iloc[order]


def lock_range(conn: sa.Connection, table: str, times: pd.Series) -> None:
    """Take the advisory locks of the chunks `times` falls in, and create their native partitions, in the
    caller's transaction — what `upsert_frame` does first, for loaders that read the table before writing.

    Creating a partition needs an exclusive lock on the table. A loader that read the table (e.g. history for
    quality scores) and then waited for the advisory lock would block a concurrent loader that holds the
    lock and is creating the partition: a deadlock. Locking first orders them.
    """
    meta = _table_meta(table)
    if times.empty:
        return
    caps, _ = _server(conn)
    _lock_and_prepare(conn, meta, caps, range_buckets(table, times))


def range_buckets(table: str, times: pd.Series) -> np.ndarray:
    """The advisory-lock buckets (chunk intervals since the epoch) `times` falls in, ascending."""
    meta = _table_meta(table)
    if times.empty:
        return np.zeros(0, dtype=np.int64)
    return _buckets(_to_micros(pd.to_datetime(times, utc=True)), meta.spec.chunk_interval)


def hold_range(conn: sa.Connection, table: str, buckets: np.ndarray) -> None:
    """Session-scoped advisory locks of `buckets` (`range_buckets`), held across the caller's transactions
    until `release_range`: a load that reads a batch's stored rows ahead of its transaction (on another
    connection) knows no other loader changes them in between. Commits the statement's transaction."""
    if len(buckets):
        conn.execute(
            sql_text("common/upsert_lock_session"),
            {"table_name": table, "buckets": [int(b) for b in buckets]},
        )
    conn.commit()


def release_range(conn: sa.Connection, table: str, buckets: np.ndarray) -> None:
    """Release the locks of `hold_range` (call it outside a transaction, e.g. in a `finally`)."""
    if len(buckets):
        conn.execute(
            sql_text("common/upsert_unlock_session"),
            {"table_name": table, "buckets": [int(b) for b in buckets]},
        )
    conn.commit()


def upsert_frame(
    conn: sa.Connection,
    table: str,
    frame: pd.DataFrame,
    *,
    audit: AuditContext | None = None,
    stored: pd.DataFrame | None = None,
) -> UpsertResult:
    """Upsert `frame` as ONE batch inside the caller's transaction (commit is the caller's).

    Being in the caller's transaction lets a loader quarantine rejected rows, update its ledgers and store
    the good rows atomically. Takes the advisory locks, creates missing native partitions, raises the
    TimescaleDB decompression limit for this transaction, COPYs into staging, upserts, records dirty windows.

    `stored`: stored versions of (some of) the frame's rows — key and compared columns, plus an optional
    `stored_nan` flag — read in this transaction after taking the range's locks (`lock_range`), as
    `load_frame` does for its quality scores. Rows equal to their stored version are counted unchanged
    without being sent: a re-load of unchanged data then costs no staging, merge or audit join.
    """
    return write_prepared(conn, prepare_upsert(table, frame, stored=stored), audit=audit)


@dataclass(frozen=True)
class PreparedUpsert:
    """A frame made ready for `write_prepared` without the database (validated, unchanged rows left out,
    ordered and encoded): `load_frame` prepares the next batch while the current one is written."""

    meta: _Table
    batch: _Batch | None  # None: nothing left to send
    offered: int  # rows of the frame as given
    everything: int  # rows after collapsing identical duplicates
    min_time: datetime | None  # the range of every row offered, sent or not
    max_time: datetime | None


def prepare_upsert(table: str, frame: pd.DataFrame, *, stored: pd.DataFrame | None = None) -> PreparedUpsert:
    """The database-free part of `upsert_frame` (see there for `stored`); raises `UpsertInputError`."""
    meta = _table_meta(table)
    valid = validate_frame(table, frame)
    everything = valid
    if stored is not None and len(stored) and len(valid):
        valid = valid[~unchanged_rows(meta, valid, stored)]
    ordered = _load_order(meta, valid)
    times = everything[meta.spec.time_column]
    return PreparedUpsert(
        meta=meta,
        batch=_prepare(meta, ordered) if len(ordered) else None,
        offered=len(frame),
        everything=len(everything),
        min_time=times.min().to_pydatetime() if len(times) else None,
        max_time=times.max().to_pydatetime() if len(times) else None,
    )


def write_prepared(
    conn: sa.Connection, prepared: PreparedUpsert, *, audit: AuditContext | None = None
) -> UpsertResult:
    """Write a `prepare_upsert` result as ONE batch in the caller's transaction (as `upsert_frame`)."""
    meta, batch = prepared.meta, prepared.batch
    result = UpsertResult.empty(meta.name) if batch is None else _write(conn, meta, batch, audit)
    if batch is None or len(batch.frame) != prepared.everything:  # the batch's range, as if all were offered
        result = replace(result, min_time=prepared.min_time, max_time=prepared.max_time)
    return _with_collapsed(result, prepared.offered)


_EXACT_FLOAT_INT = 2**53  # integers beyond this are not compared through float64


def unchanged_rows(meta: _Table, frame: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """Rows of the validated `frame` whose stored row has the same value in every compared column the
    frame offers: what the merge statement's `IS DISTINCT FROM` would find unchanged (NULL equals NULL).

    Rows it cannot decide exactly — no stored row, a compared column `stored` lacks, JSON or numeric
    columns, a stored NaN (PostgreSQL tells it from NULL, the frame does not), integers beyond 2**53 —
    are reported changed and left to the server.
    """
    same = np.zeros(len(frame), dtype=bool)
    compared = [c for c in frame.columns if meta.columns[c].compared]
    if any(c not in stored.columns or meta.columns[c].kind in ("jsonb", "numeric") for c in compared):
        return same
    position = _stored_positions(meta, frame, stored)
    same = position >= 0
    if "stored_nan" in stored:
        same &= ~stored["stored_nan"].to_numpy(dtype=bool)[np.maximum(position, 0)]
    for name in compared:
        if not same.any():
            break
        same &= _not_distinct(meta.columns[name], frame[name], stored[name].iloc[np.maximum(position, 0)])
    return same


def _stored_positions(meta: _Table, frame: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """Position in `stored` of each frame row's key, -1 where there is none (the key must be unique)."""
    codes = []
    for name in meta.key:
        if meta.columns[name].kind == "timestamp":
            left = _to_micros(frame[name])
            right = _to_micros(pd.to_datetime(stored[name], utc=True))
        else:
            both, _ = pd.factorize(pd.concat([frame[name], stored[name].astype(frame[name].dtype)]))
            left, right = both[: len(frame)], both[len(frame) :]
        codes.append((left, right))
    wanted = pd.MultiIndex.from_arrays([left for left, _ in codes])
    have = pd.MultiIndex.from_arrays([right for _, right in codes])
    return have.get_indexer(wanted)


def _not_distinct(col: _Column, offered: pd.Series, stored: pd.Series) -> np.ndarray:
    """`offered IS NOT DISTINCT FROM stored`, value by value (`stored` aligned to `offered`)."""
    if col.kind in ("float8", "float4", "int8", "int4", "int2"):
        a = offered.to_numpy(dtype=np.float64, na_value=np.nan)
        b = stored.to_numpy(dtype=np.float64, na_value=np.nan)
        if col.kind == "float4":  # the stored float4 read back as float64; the offered value as written
            b = b.astype(np.float32).astype(np.float64)
        equal = (a == b) | (np.isnan(a) & np.isnan(b))
        if col.kind.startswith("int"):
            equal &= ~(np.abs(a) > _EXACT_FLOAT_INT)
        return equal
    if col.kind == "timestamp":
        a, b = offered.isna().to_numpy(), stored.isna().to_numpy()
        values = _to_micros(offered.fillna(pd.Timestamp(0, tz="UTC"))) == _to_micros(
            pd.to_datetime(stored, utc=True).fillna(pd.Timestamp(0, tz="UTC"))
        )
        return (a & b) | (~a & ~b & values)
    a_na, b_na = offered.isna().to_numpy(), stored.isna().to_numpy()
    values = offered.to_numpy(dtype=object) == stored.to_numpy(dtype=object)
    return (a_na & b_na) | (~a_na & ~b_na & values)


def upsert_dataframe(
    engine: sa.Engine,
    table: str,
    frame: pd.DataFrame,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    audit: AuditContext | None = None,
) -> UpsertResult:
    """Validate the WHOLE frame (nothing is written if any row is bad), then upsert it batch by batch.

    Each batch of at most `batch_rows` rows is its own transaction. Rows are ordered by chunk, series and
    time first (`_load_order`), so that a batch covers a compact range and reads of a series stay local.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    meta = _table_meta(table)
    valid = _load_order(meta, validate_frame(table, frame))
    result = UpsertResult.empty(table)
    slices = [valid.iloc[start : start + batch_rows] for start in range(0, len(valid), batch_rows)]
    # The next batch is encoded in a worker thread while this one is written (the database call releases
    # the GIL): client CPU and server CPU overlap on the two cores instead of taking turns.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mw-upsert-prepare") as pool:
        pending = pool.submit(_prepare, meta, slices[0]) if slices else None
        for index in range(len(slices)):
            batch = pending.result()
            pending = pool.submit(_prepare, meta, slices[index + 1]) if index + 1 < len(slices) else None
            with engine.begin() as conn:
                result += _write(conn, meta, batch, audit)
    return _with_collapsed(result, len(frame))
