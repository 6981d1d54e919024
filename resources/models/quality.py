"""Data quality: validation rules, quarantined rows, detected anomalies, audit trail and archive."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Json, UtcTimestamp


class ValidationRule(Base):
    """Declarative row checks per dataset, applied before upsert — seed 003."""

    __tablename__ = "validation_rules"
    __table_args__ = (
        UniqueConstraint("dataset", "name"),
        CheckConstraint("kind IN ('range', 'not_null', 'regex', 'pair', 'custom')", name="kind"),
        CheckConstraint("severity IN ('error', 'warning')", name="severity"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dataset: Mapped[str] = mapped_column(Text)  # 'ohlcv', 'market_trades', ...
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    column_name: Mapped[str | None] = mapped_column(Text)
    # e.g. {"min": 0}, {"regex": "..."}, {"other": "low", "op": ">="}
    params: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    severity: Mapped[str] = mapped_column(Text, server_default=text("'error'"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class Quarantine(Base):
    """Rows rejected by validation, with the reason, until fixed and released — ours."""

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_table_name_created_at", "table_name", "created_at"),
        Index(
            "ix_quarantine_table_name_unreleased",
            "table_name",
            postgresql_where=text("released_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text)
    # Natural key of the row; null when the row is too broken to have one.
    key: Mapped[dict[str, Any] | None] = mapped_column(Json)
    row_data: Mapped[dict[str, Any]] = mapped_column(Json)
    rule: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    partition_key: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    released_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    released_by_run: Mapped[str | None] = mapped_column(Text)


class Anomaly(Base):
    """Statistical outliers found in stored series (flagged, not rejected) — seed 003."""

    __tablename__ = "anomalies"
    __table_args__ = (
        CheckConstraint("severity IN ('anomaly', 'black_swan')", name="severity"),
        Index("ix_anomalies_table_name_time", "table_name", "time"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text)
    series_key: Mapped[dict[str, Any]] = mapped_column(Json)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    metric: Mapped[str] = mapped_column(Text)  # 'return', 'volume', ...
    value: Mapped[float | None] = mapped_column(Float)
    zscore: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(Text, server_default=text("'anomaly'"))
    detected_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    run_id: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Row-level change history of corrected data — seed 003."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("operation IN ('insert', 'update', 'delete')", name="operation"),
        Index("ix_audit_log_table_name_changed_at", "table_name", "changed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
    row_key: Mapped[dict[str, Any]] = mapped_column(Json)
    old_data: Mapped[dict[str, Any] | None] = mapped_column(Json)
    new_data: Mapped[dict[str, Any] | None] = mapped_column(Json)
    changed_fields: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    changed_by: Mapped[str | None] = mapped_column(Text)  # run id or user
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class TimeseriesArchive(Base):
    """Rows removed from time-series tables (replaced or purged), kept for restore — seed 003."""

    __tablename__ = "timeseries_archive"
    __table_args__ = (Index("ix_timeseries_archive_table_name_archived_at", "table_name", "archived_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text)
    row_key: Mapped[dict[str, Any]] = mapped_column(Json)
    row_data: Mapped[dict[str, Any]] = mapped_column(Json)
    reason: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    archived_by: Mapped[str | None] = mapped_column(Text)
    restored_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
