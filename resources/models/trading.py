"""Trading: agent decisions, signals, our fills, positions, bot trades, equity and risk."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Json, Money, Price, UtcTimestamp, timeseries


@timeseries("time", timedelta(days=30))
class AgentDecision(Base):
    """State/action/reward records of trading agents (RL-style) — seed 000."""

    __tablename__ = "agent_decisions"
    __table_args__ = (PrimaryKeyConstraint("id", "time"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity())
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    agent_id: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str | None] = mapped_column(Text)
    state: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    next_state: Mapped[dict[str, Any] | None] = mapped_column(Json)
    action: Mapped[str] = mapped_column(Text)
    action_value: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    reward: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(Text)
    position_size: Mapped[float] = mapped_column(Price, server_default=text("0"))
    position_side: Mapped[str | None] = mapped_column(Text)
    entry_price: Mapped[float | None] = mapped_column(Price)
    unrealized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    model_version: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))


@timeseries("time", timedelta(days=30))
class TradingSignal(Base):
    """Strategy signals and, once acted on, their execution outcome — seed 000."""

    __tablename__ = "trading_signals"
    __table_args__ = (
        PrimaryKeyConstraint("id", "time"),
        CheckConstraint("signal_type IN ('buy', 'sell', 'hold')", name="signal_type"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity())
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    strategy: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    interval: Mapped[str | None] = mapped_column(Text)
    signal_type: Mapped[str] = mapped_column(Text)
    strength: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    entry_price: Mapped[float | None] = mapped_column(Price)
    target_price: Mapped[float | None] = mapped_column(Price)
    stop_loss: Mapped[float | None] = mapped_column(Price)
    expected_return: Mapped[float | None] = mapped_column(Float)
    risk_reward_ratio: Mapped[float | None] = mapped_column(Float)
    executed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    executed_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    execution_price: Mapped[float | None] = mapped_column(Price)
    exit_price: Mapped[float | None] = mapped_column(Price)
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    indicators: Mapped[dict[str, Any]] = mapped_column(Json, server_default=text("'{}'::jsonb"))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))


class TradeHistory(Base):
    """Our own fills, with the signal and execution result as logged — seed 002."""

    __tablename__ = "trade_history"
    __table_args__ = (
        CheckConstraint("side IN ('buy', 'sell')", name="side"),
        Index("ix_trade_history_symbol_executed_at", "symbol", "executed_at"),
        Index("ix_trade_history_correlation_id", "correlation_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    # Refers to trading_signals.id; no FK because trading_signals is a time-series table.
    signal_id: Mapped[int | None] = mapped_column(BigInteger)
    strategy: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    order_type: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    fee_currency: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    executed_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    signal: Mapped[dict[str, Any] | None] = mapped_column(Json)
    execution: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())


class Position(Base):
    """Open and closed positions of our books — seed 004."""

    __tablename__ = "positions"
    __table_args__ = (
        CheckConstraint("side IN ('long', 'short')", name="side"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index("ix_positions_status_symbol", "status", "symbol"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    symbol: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Money)
    entry_price: Mapped[Decimal] = mapped_column(Money)
    current_price: Mapped[Decimal | None] = mapped_column(Money)
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    realized_pnl: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    stop_loss: Mapped[Decimal | None] = mapped_column(Money)
    take_profit: Mapped[Decimal | None] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Numeric, server_default=text("1"))
    status: Mapped[str] = mapped_column(Text, server_default=text("'open'"))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcTimestamp, server_default=func.now())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))


class BotTrade(Base):
    """Round-trip trades (entry to exit) of trading bots — seed 004."""

    __tablename__ = "bot_trades"
    __table_args__ = (
        CheckConstraint("side IN ('long', 'short')", name="side"),
        CheckConstraint("status IN ('open', 'closed', 'cancelled')", name="status"),
        Index("ix_bot_trades_symbol_entry_time", "symbol", "entry_time"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    bot_id: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    entry_price: Mapped[Decimal] = mapped_column(Money)
    exit_price: Mapped[Decimal | None] = mapped_column(Money)
    quantity: Mapped[Decimal] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Numeric, server_default=text("1"))
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    realized_pnl_pct: Mapped[float | None] = mapped_column(Float)
    fees: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text, server_default=text("'open'"))
    entry_time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    exit_time: Mapped[dt.datetime | None] = mapped_column(UtcTimestamp)
    exit_reason: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json, server_default=text("'{}'::jsonb"))


@timeseries("time", timedelta(days=30))
class EquityCurve(Base):
    """Portfolio equity over time (live or per backtest run) — seed 002."""

    __tablename__ = "equity_curve"
    __table_args__ = (PrimaryKeyConstraint("portfolio", "time"),)

    portfolio: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    equity: Mapped[Decimal] = mapped_column(Money)
    cash: Mapped[Decimal | None] = mapped_column(Money)
    buying_power: Mapped[Decimal | None] = mapped_column(Money)
    positions_value: Mapped[Decimal | None] = mapped_column(Money)
    total_return: Mapped[float | None] = mapped_column(Float)
    daily_return: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[str | None] = mapped_column(Text)


@timeseries("time", timedelta(days=30))
class RiskMetric(Base):
    """Portfolio risk snapshots (exposure, drawdown, VaR, loss limit) — seed 002."""

    __tablename__ = "risk_metrics"
    __table_args__ = (PrimaryKeyConstraint("portfolio", "time"),)

    portfolio: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime] = mapped_column(UtcTimestamp)
    open_positions: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    gross_exposure: Mapped[Decimal | None] = mapped_column(Money)
    net_exposure: Mapped[Decimal | None] = mapped_column(Money)
    largest_position: Mapped[Decimal | None] = mapped_column(Money)
    portfolio_value: Mapped[Decimal | None] = mapped_column(Money)
    daily_pnl: Mapped[Decimal | None] = mapped_column(Money)
    total_pnl: Mapped[Decimal | None] = mapped_column(Money)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    var_95: Mapped[float | None] = mapped_column(Float)
    var_99: Mapped[float | None] = mapped_column(Float)
    cvar_95: Mapped[float | None] = mapped_column(Float)
    cvar_99: Mapped[float | None] = mapped_column(Float)
    daily_loss_limit: Mapped[Decimal | None] = mapped_column(Money)
    daily_loss_limit_breached: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    run_id: Mapped[str | None] = mapped_column(Text)
