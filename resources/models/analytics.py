"""Analytics: computed features, forecasts, the models that made them, and backtest results."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Identity,
    Integer,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from market_warehouse.resources.indicators import FEATURE_COLUMNS as INDICATOR_COLUMNS

from .base import Base, Json, Money, UtcTimestamp, timeseries


@timeseries("time", timedelta(days=7))
class Feature(Base):
    """Technical features per candle, grouped by feature set — seed 003."""

    __tablename__ = "features"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "interval", "feature_set", "time"),)

    exchange: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    interval: Mapped[str] = mapped_column(Text)
    feature_set: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    # One nullable float column per indicator output, in declaration order: a feature is declared once, in
    # `resources.indicators.INDICATORS`; its migration is what `alembic revision --autogenerate` writes.
    locals().update({column: mapped_column(Float, nullable=True) for column in INDICATOR_COLUMNS})
    extra: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    computed_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


# The stored values of a feature set per candle: the float columns of `features`, in table order, for the
# feature reads (`resources.warehouse.ops.analytics`).
FEATURE_COLUMNS = [column.name for column in Feature.__table__.c if isinstance(column.type, Float)]


@timeseries("target_time", timedelta(days=30))
class Forecast(Base):
    """Point and interval forecasts per model run and target time, later joined with actuals — seed 003."""

    __tablename__ = "forecasts"
    __table_args__ = (PrimaryKeyConstraint("model_id", "symbol", "interval", "generated_at", "target_time"),)

    # Refers to ml_models.id; no FK, forecasts is a time-series table.
    model_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    interval: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    target_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    exchange: Mapped[str | None] = mapped_column(Text)
    horizon_step: Mapped[int] = mapped_column(Integer)
    point: Mapped[float] = mapped_column(Float)
    lower_80: Mapped[float | None] = mapped_column(Float)
    upper_80: Mapped[float | None] = mapped_column(Float)
    lower_95: Mapped[float | None] = mapped_column(Float)
    upper_95: Mapped[float | None] = mapped_column(Float)
    actual: Mapped[float | None] = mapped_column(Float)
    error: Mapped[float | None] = mapped_column(Float)
    actual_filled_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)


class MlModel(Base):
    """Registry of fitted forecasting models (kind, params, training window) — seed 003."""

    __tablename__ = "ml_models"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # 'ets', 'arima', 'naive', ...
    params: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    training_start: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    training_end: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    code_version: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class BacktestResult(Base):
    """Summary of one backtest run of a strategy — seed 003."""

    __tablename__ = "backtest_results"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    strategy: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    symbol: Mapped[str | None] = mapped_column(Text)
    exchange: Mapped[str | None] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    end_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    initial_capital: Mapped[Decimal] = mapped_column(Money)
    final_equity: Mapped[Decimal] = mapped_column(Money)
    total_return: Mapped[float | None] = mapped_column(Float)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    sortino_ratio: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    win_rate: Mapped[float | None] = mapped_column(Float)
    profit_factor: Mapped[float | None] = mapped_column(Float)
    trades: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    fees_paid: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    run_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
