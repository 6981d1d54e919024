"""Operations: lineage, run logs, system events, the file ledger and the coverage ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Json, UtcTimestamp


class Lineage(Base):
    """Which inputs (asset, partition, data version) produced each materialization — seed 003."""

    __tablename__ = "lineage"
    __table_args__ = (
        Index("ix_lineage_asset_key_created_at", "asset_key", "created_at"),
        Index("ix_lineage_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    asset_key: Mapped[str] = mapped_column(Text)
    partition_key: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str | None] = mapped_column(Text)
    data_version: Mapped[str | None] = mapped_column(Text)
    # List of {"asset_key": ..., "partition": ..., "data_version": ...}
    upstream: Mapped[list[dict[str, Any]]] = mapped_column(Json, server_default=text("'[]'::jsonb"))
    rows_in: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class IterationLog(Base):
    """Per-iteration phase timings of the trading loop — seed 002."""

    __tablename__ = "iteration_log"
    __table_args__ = (Index("ix_iteration_log_correlation_id", "correlation_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(Text)
    iteration: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class AuditReportLog(Base):
    """Results of periodic audit reports (reconciliation, data checks) — seed 002."""

    __tablename__ = "audit_report_log"
    __table_args__ = (Index("ix_audit_report_log_correlation_id", "correlation_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(Text)
    report_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[list[Any]] = mapped_column(Json, server_default=text("'[]'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class SystemEvent(Base):
    """Operational events and errors of pipelines and bots — seed 004."""

    __tablename__ = "system_events"
    __table_args__ = (
        CheckConstraint("severity IN ('debug', 'info', 'warning', 'error', 'critical')", name="severity"),
        Index("ix_system_events_severity_time", "severity", "time"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    severity: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    component: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))


class IngestFile(Base):
    """Ledger of landed files loaded (by content hash), so a file is loaded once — ours."""

    __tablename__ = "ingest_files"
    __table_args__ = (
        UniqueConstraint("path", "sha256"),
        CheckConstraint("status IN ('loaded', 'failed', 'empty', 'partial')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    layout: Mapped[str | None] = mapped_column(Text)
    time_unit: Mapped[str | None] = mapped_column(Text)  # 's', 'ms', 'us', 'ns', 'iso'
    exchange: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    rows_loaded: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    first_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    last_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    run_id: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class Coverage(Base):
    """Ledger of requested (source, dataset, series, range) fetches already done — ours."""

    __tablename__ = "coverage"
    __table_args__ = (
        CheckConstraint("status IN ('complete', 'partial', 'empty')", name="status"),
        CheckConstraint("range_end >= range_start", name="range"),
        Index(
            "ix_coverage_dataset_exchange_symbol_interval_range_start",
            "dataset",
            "exchange",
            "symbol",
            "interval",
            "range_start",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)  # 'ccxt:binance', ...
    dataset: Mapped[str] = mapped_column(Text)  # 'ohlcv', 'market_trades', ...
    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    range_start: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    range_end: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    rows: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class AggregateDirtyWindow(Base):
    """Hours of a table whose rows changed since its aggregates were refreshed — ours.

    Written by the upsert in the same statement as the rows (only rows actually inserted or changed);
    consumed by the aggregate refresh job, which deletes what it refreshes.
    """

    __tablename__ = "aggregate_dirty_windows"
    __table_args__ = (CheckConstraint("extract(epoch FROM bucket_start) % 3600 = 0", name="hour_aligned"),)

    table_name: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(UtcTimestamp, primary_key=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class ColdPiece(Base):
    """One Parquet file of the cold tier: rows exported before retention dropped them — issue 16.

    One row per file (a piece's rows of one series and month); retention inserts it in the transaction that
    drops the rows, so a file is listed here if and only if its rows left the database. Reads of a range no
    longer in the database find their files here; `sha256` and `rows` verify a file and make a second export
    of the same rows a no-op.
    """

    __tablename__ = "cold_pieces"
    __table_args__ = (
        UniqueConstraint("root", "path"),
        Index("ix_cold_pieces_series", "table_name", "exchange", "symbol", "interval", "min_time"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text)
    piece: Mapped[str] = mapped_column(Text)  # schema.name of the chunk or partition when exported
    range_start: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    range_end: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    exchange: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    price: Mapped[str | None] = mapped_column(Text)  # ohlcv's price kind (migration 0005); null elsewhere
    month: Mapped[str] = mapped_column(Text)  # 'YYYY-MM', the last hive partition level
    min_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    max_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    root: Mapped[str] = mapped_column(Text)  # the configured cold location (folder or fsspec URL)
    path: Mapped[str] = mapped_column(Text)  # the file, relative to root (hive directories)
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    exported_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
