"""Operations on trading records (`resources.models.trading`): agent decisions, signals, our fills,
equity and risk snapshots, bot round trips and positions.

Money is `numeric` (exact `Decimal`); snapshots are upserts on (portfolio, time); decisions, signals and
fills are append-only journals with identity ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from market_warehouse.resources import clock
from market_warehouse.resources.intervals import validate_interval
from market_warehouse.resources.models import (
    AgentDecision,
    BotTrade,
    EquityCurve,
    Position,
    RiskMetric,
    TradeHistory,
    TradingSignal,
)
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.ops.common import (
    NotFoundError,
    bounds,
    checked_limit,
    fetch_all,
    fetch_one,
    fetch_required,
    generate_correlation_id,
    insert_record,
    money,
)
from market_warehouse.resources.warehouse.records import (
    AgentDecisionRecord,
    BotTradeRecord,
    EquityPoint,
    PositionRecord,
    RiskSnapshot,
    Signal,
    StrategyPerformance,
    TradeFill,
    TradeStatistics,
    from_row,
    utc,
)


def log_agent_decision(
    conn: sa.Connection,
    agent_id: str,
    symbol: str,
    action: str,
    *,
    state: dict | None = None,
    time: datetime | None = None,
    exchange: str | None = None,
    action_value: float | None = None,
    confidence: float | None = None,
    position_size: float = 0.0,
    position_side: str | None = None,
    entry_price: float | None = None,
    unrealized_pnl: Decimal | float | None = None,
    model_version: str | None = None,
    metadata: dict | None = None,
) -> AgentDecisionRecord:
    """Record an agent's state and action; its reward and outcome come later (`update_agent_decision`)."""
    return insert_record(
        conn,
        AgentDecision,
        AgentDecisionRecord,
        time=utc(time) or clock.now(),
        agent_id=agent_id,
        symbol=symbol,
        exchange=exchange,
        action=action,
        state=state or {},
        action_value=action_value,
        confidence=confidence,
        position_size=position_size,
        position_side=position_side,
        entry_price=entry_price,
        unrealized_pnl=money(unrealized_pnl),
        model_version=model_version,
        metadata=metadata or {},
    )


def update_agent_decision(
    conn: sa.Connection,
    decision_id: int,
    *,
    reward: float | None = None,
    outcome: str | None = None,
    next_state: dict | None = None,
    time: datetime | None = None,
) -> AgentDecisionRecord:
    """Set the reward / outcome / next state of a decision; `time` (if known) lets the server prune partitions."""
    t = AgentDecision.__table__
    values = {
        k: v
        for k, v in {"reward": reward, "outcome": outcome, "next_state": next_state}.items()
        if v is not None
    }
    if not values:
        raise ValueError("update_agent_decision needs at least one of reward, outcome, next_state")
    where = t.c.id == decision_id
    if time is not None:
        where &= t.c.time == utc(time)
    stmt = sa.update(t).where(where).values(values).returning(*t.c)
    return fetch_required(conn, stmt, AgentDecisionRecord, f"agent decision {decision_id}")


def get_agent_decisions(
    conn: sa.Connection,
    agent_id: str | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
    pending_reward: bool = False,
) -> list[AgentDecisionRecord]:
    """Decisions with time in [start, end), newest first; `pending_reward` keeps those without a reward."""
    lo, hi = bounds(start, end)
    t = AgentDecision.__table__
    stmt = sa.select(t).where(t.c.time >= lo, t.c.time < hi)
    if agent_id is not None:
        stmt = stmt.where(t.c.agent_id == agent_id)
    if symbol is not None:
        stmt = stmt.where(t.c.symbol == symbol)
    if pending_reward:
        stmt = stmt.where(t.c.reward.is_(None))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, AgentDecisionRecord)


def insert_signal(
    conn: sa.Connection,
    strategy: str,
    symbol: str,
    exchange: str,
    signal_type: str,
    *,
    time: datetime | None = None,
    interval: str | None = None,
    strength: float | None = None,
    confidence: float | None = None,
    entry_price: float | None = None,
    target_price: float | None = None,
    stop_loss: float | None = None,
    expected_return: float | None = None,
    risk_reward_ratio: float | None = None,
    indicators: dict | None = None,
    metadata: dict | None = None,
) -> Signal:
    """Record a strategy's buy / sell / hold signal."""
    if signal_type not in ("buy", "sell", "hold"):
        raise ValueError(f"signal_type must be 'buy', 'sell' or 'hold', not {signal_type!r}")
    return insert_record(
        conn,
        TradingSignal,
        Signal,
        time=utc(time) or clock.now(),
        strategy=strategy,
        symbol=symbol,
        exchange=exchange,
        interval=validate_interval(interval) if interval else None,
        signal_type=signal_type,
        strength=strength,
        confidence=confidence,
        entry_price=entry_price,
        target_price=target_price,
        stop_loss=stop_loss,
        expected_return=expected_return,
        risk_reward_ratio=risk_reward_ratio,
        indicators=indicators or {},
        metadata=metadata or {},
    )


def get_signals(
    conn: sa.Connection,
    strategy: str | None = None,
    symbol: str | None = None,
    exchange: str | None = None,
    executed: bool | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
) -> list[Signal]:
    """Signals with time in [start, end), newest first; `executed` True/False filters on execution."""
    lo, hi = bounds(start, end)
    t = TradingSignal.__table__
    stmt = sa.select(t).where(t.c.time >= lo, t.c.time < hi)
    for column, value in (("strategy", strategy), ("symbol", symbol), ("exchange", exchange)):
        if value is not None:
            stmt = stmt.where(t.c[column] == value)
    if executed is not None:
        stmt = stmt.where(t.c.executed.is_(executed))
    stmt = stmt.order_by(t.c.time.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, Signal)


def mark_signal_executed(
    conn: sa.Connection, signal_id: int, execution_price: float, executed_at: datetime | None = None
) -> Signal:
    """Mark a signal acted on, at `execution_price` (the exchange's fill price)."""
    t = TradingSignal.__table__
    stmt = (
        sa.update(t)
        .where(t.c.id == signal_id)
        .values(executed=True, execution_price=execution_price, executed_at=utc(executed_at) or clock.now())
        .returning(*t.c)
    )
    return fetch_required(conn, stmt, Signal, f"trading signal {signal_id}")


def close_signal(
    conn: sa.Connection, signal_id: int, exit_price: float, realized_pnl: Decimal | float
) -> Signal:
    """Record the exit of an executed signal: its realized PnL feeds `get_strategy_performance`."""
    t = TradingSignal.__table__
    stmt = (
        sa.update(t)
        .where(t.c.id == signal_id)
        .values(exit_price=exit_price, realized_pnl=money(realized_pnl))
        .returning(*t.c)
    )
    return fetch_required(conn, stmt, Signal, f"trading signal {signal_id}")


def get_strategy_performance(
    conn: sa.Connection,
    strategy: str | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StrategyPerformance]:
    """Per strategy: signals, executed, closed, win rate and average / total / best / worst realized PnL."""
    lo, hi = bounds(start, end)
    params = {"strategy": strategy, "symbol": symbol, "start": lo, "end": hi}
    return fetch_all(conn, sql_text("common/strategy_performance"), StrategyPerformance, params)


def log_trade(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    quantity: Decimal | float | str,
    price: Decimal | float | str,
    *,
    status: str = "filled",
    signal: dict | None = None,
    execution: dict | None = None,
    correlation_id: str | None = None,
    signal_id: int | None = None,
    strategy: str | None = None,
    order_type: str | None = None,
    fees: Decimal | float | str = 0,
    fee_currency: str | None = None,
    executed_at: datetime | None = None,
    realized_pnl: Decimal | float | str | None = None,
) -> TradeFill:
    """Log one of our fills with the signal that caused it and the exchange's execution result."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    return insert_record(
        conn,
        TradeHistory,
        TradeFill,
        correlation_id=correlation_id or generate_correlation_id(),
        signal_id=signal_id,
        strategy=strategy,
        symbol=symbol,
        exchange=exchange,
        side=side,
        order_type=order_type,
        quantity=money(quantity),
        price=money(price),
        fees=money(fees),
        fee_currency=fee_currency,
        status=status,
        executed_at=utc(executed_at) or clock.now(),
        realized_pnl=money(realized_pnl),
        signal=signal,
        execution=execution,
    )


def _upsert_snapshot(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: Sequence[str]):
    stmt = pg_insert(table).values(values)
    updated = [c for c in values if c not in key]
    stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in updated})
    return stmt.returning(*table.c)


def log_equity_snapshot(
    conn: sa.Connection,
    portfolio: str,
    equity: Decimal | float | str,
    *,
    time: datetime | None = None,
    cash: Decimal | float | str | None = None,
    buying_power: Decimal | float | str | None = None,
    positions_value: Decimal | float | str | None = None,
    total_return: float | None = None,
    daily_return: float | None = None,
    run_id: str | None = None,
) -> EquityPoint:
    """Record the portfolio's equity at `time` (default now); the same (portfolio, time) again replaces it."""
    values = {
        "portfolio": portfolio,
        "time": utc(time) or clock.now(),
        "equity": money(equity),
        "cash": money(cash),
        "buying_power": money(buying_power),
        "positions_value": money(positions_value),
        "total_return": total_return,
        "daily_return": daily_return,
        "run_id": run_id,
    }
    stmt = _upsert_snapshot(conn, EquityCurve.__table__, values, ("portfolio", "time"))
    return fetch_one(conn, stmt, EquityPoint)


RISK_MONEY = (
    "gross_exposure",
    "net_exposure",
    "largest_position",
    "portfolio_value",
    "daily_pnl",
    "total_pnl",
    "daily_loss_limit",
)
RISK_FLOATS = ("max_drawdown", "sharpe_ratio", "var_95", "var_99", "cvar_95", "cvar_99")


def log_risk_metrics(
    conn: sa.Connection,
    portfolio: str,
    *,
    time: datetime | None = None,
    open_positions: int = 0,
    daily_loss_limit_breached: bool = False,
    run_id: str | None = None,
    **metrics: Decimal | float | str | None,
) -> RiskSnapshot:
    """Record a risk snapshot; `metrics` are the money columns (gross_exposure, net_exposure,
    largest_position, portfolio_value, daily_pnl, total_pnl, daily_loss_limit) and the ratios (max_drawdown,
    sharpe_ratio, var_95, var_99, cvar_95, cvar_99). The same (portfolio, time) again replaces it."""
    unknown = set(metrics) - set(RISK_MONEY) - set(RISK_FLOATS)
    if unknown:
        raise TypeError(f"unknown risk metrics {sorted(unknown)}; known: {sorted(RISK_MONEY + RISK_FLOATS)}")
    values: dict[str, Any] = {
        "portfolio": portfolio,
        "time": utc(time) or clock.now(),
        "open_positions": open_positions,
        "daily_loss_limit_breached": daily_loss_limit_breached,
        "run_id": run_id,
    }
    values |= {name: money(metrics.get(name)) for name in RISK_MONEY}
    values |= {name: metrics.get(name) for name in RISK_FLOATS}
    stmt = _upsert_snapshot(conn, RiskMetric.__table__, values, ("portfolio", "time"))
    return fetch_one(conn, stmt, RiskSnapshot)


def get_trade_history(
    conn: sa.Connection,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 100,
    correlation_id: str | None = None,
    strategy: str | None = None,
) -> list[TradeFill]:
    """Our fills executed in [start, end), newest first."""
    lo, hi = bounds(start, end)
    t = TradeHistory.__table__
    stmt = sa.select(t).where(t.c.executed_at >= lo, t.c.executed_at < hi)
    for column, value in (("symbol", symbol), ("correlation_id", correlation_id), ("strategy", strategy)):
        if value is not None:
            stmt = stmt.where(t.c[column] == value)
    stmt = stmt.order_by(t.c.executed_at.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, TradeFill)


def get_equity_curve(
    conn: sa.Connection, portfolio: str, start: datetime | None = None, end: datetime | None = None
) -> list[EquityPoint]:
    """Equity snapshots with time in [start, end), in time order."""
    lo, hi = bounds(start, end)
    t = EquityCurve.__table__
    stmt = sa.select(t).where(t.c.portfolio == portfolio, t.c.time >= lo, t.c.time < hi).order_by(t.c.time)
    return fetch_all(conn, stmt, EquityPoint)


def get_risk_metrics(
    conn: sa.Connection, portfolio: str, start: datetime | None = None, end: datetime | None = None
) -> list[RiskSnapshot]:
    """Risk snapshots with time in [start, end), in time order."""
    lo, hi = bounds(start, end)
    t = RiskMetric.__table__
    stmt = sa.select(t).where(t.c.portfolio == portfolio, t.c.time >= lo, t.c.time < hi).order_by(t.c.time)
    return fetch_all(conn, stmt, RiskSnapshot)


_BOT_MONEY = ("entry_price", "exit_price", "quantity", "leverage", "realized_pnl", "fees")


def _direction(side_column: sa.ColumnElement) -> sa.ColumnElement:
    """+1 for long, -1 for short: PnL = (exit - entry) * quantity * direction."""
    return sa.case((side_column == "long", 1), else_=-1)


def insert_bot_trade(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    entry_price: Decimal | float | str,
    quantity: Decimal | float | str,
    *,
    entry_time: datetime | None = None,
    bot_id: str | None = None,
    strategy: str | None = None,
    leverage: Decimal | float | str = 1,
    fees: Decimal | float | str = 0,
    metadata: dict | None = None,
) -> BotTradeRecord:
    """Open a bot round trip ('long' or 'short'); close it with `close_bot_trade`."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    return insert_record(
        conn,
        BotTrade,
        BotTradeRecord,
        bot_id=bot_id,
        strategy=strategy,
        symbol=symbol,
        exchange=exchange,
        side=side,
        entry_price=money(entry_price),
        quantity=money(quantity),
        leverage=money(leverage),
        fees=money(fees),
        status="open",
        entry_time=utc(entry_time) or clock.now(),
        metadata=metadata or {},
    )


def update_bot_trade(conn: sa.Connection, trade_id: int, **changes: Any) -> BotTradeRecord:
    """Set any columns of a bot trade (e.g. status, exit_price, realized_pnl, fees, metadata)."""
    t = BotTrade.__table__
    unknown = set(changes) - (set(t.c.keys()) - {"id"})
    if unknown or not changes:
        raise TypeError(
            f"update_bot_trade: unknown or no columns {sorted(unknown)}; known: {sorted(t.c.keys())}"
        )
    values = {}
    for name, value in changes.items():
        if name in _BOT_MONEY:
            value = money(value)
        elif name in ("entry_time", "exit_time"):
            value = utc(value)
        values[name] = value
    stmt = sa.update(t).where(t.c.id == trade_id).values(values).returning(*t.c)
    return fetch_required(conn, stmt, BotTradeRecord, f"bot trade {trade_id}")


def close_bot_trade(
    conn: sa.Connection,
    trade_id: int,
    exit_price: Decimal | float | str,
    *,
    exit_time: datetime | None = None,
    exit_reason: str | None = None,
    fees: Decimal | float | str | None = None,
) -> BotTradeRecord:
    """Close an open trade: realized PnL (before fees) and its percentage of the entry value, in SQL.

    Closing a closed trade changes nothing and returns it as stored.
    """
    t = BotTrade.__table__
    price = sa.cast(sa.literal(money(exit_price)), t.c.exit_price.type)
    direction = _direction(t.c.side)
    values: dict[str, Any] = {
        "exit_price": price,
        "exit_time": utc(exit_time) or clock.now(),
        "exit_reason": exit_reason,
        "status": "closed",
        "realized_pnl": (price - t.c.entry_price) * t.c.quantity * direction,
        "realized_pnl_pct": sa.cast((price - t.c.entry_price) / t.c.entry_price * direction * 100, sa.Float),
    }
    if fees is not None:
        values["fees"] = money(fees)
    stmt = sa.update(t).where(t.c.id == trade_id, t.c.status == "open").values(values).returning(*t.c)
    closed = fetch_one(conn, stmt, BotTradeRecord)
    if closed is not None:
        return closed
    return fetch_required(
        conn, sa.select(t).where(t.c.id == trade_id), BotTradeRecord, f"bot trade {trade_id}"
    )


def get_bot_trade(conn: sa.Connection, trade_id: int) -> BotTradeRecord | None:
    """One bot trade by id (seed 004's `get_by_id`), or None."""
    t = BotTrade.__table__
    return fetch_one(conn, sa.select(t).where(t.c.id == trade_id), BotTradeRecord)


def get_recent_bot_trades(
    conn: sa.Connection, limit: int = 50, status: str | None = None, bot_id: str | None = None
) -> list[BotTradeRecord]:
    """The latest trades by entry time, newest first."""
    t = BotTrade.__table__
    stmt = sa.select(t)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    if bot_id is not None:
        stmt = stmt.where(t.c.bot_id == bot_id)
    stmt = stmt.order_by(t.c.entry_time.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, BotTradeRecord)


def get_bot_trades_by_symbol(
    conn: sa.Connection, symbol: str, limit: int | None = 100, status: str | None = None
) -> list[BotTradeRecord]:
    """Trades of one symbol, newest entry first."""
    t = BotTrade.__table__
    stmt = sa.select(t).where(t.c.symbol == symbol)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    stmt = stmt.order_by(t.c.entry_time.desc(), t.c.id.desc()).limit(checked_limit(limit))
    return fetch_all(conn, stmt, BotTradeRecord)


def get_bot_trade_statistics(
    conn: sa.Connection,
    symbol: str | None = None,
    strategy: str | None = None,
    bot_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TradeStatistics:
    """Win rate, gross profit / loss, fees, net PnL, average and largest win / loss, profit factor."""
    lo, hi = bounds(start, end)
    params = {"symbol": symbol, "strategy": strategy, "bot_id": bot_id, "start": lo, "end": hi}
    row = conn.execute(sql_text("common/trade_statistics"), params).mappings().one()
    return from_row(TradeStatistics, row)


def open_position(
    conn: sa.Connection,
    symbol: str,
    exchange: str,
    side: str,
    quantity: Decimal | float | str,
    entry_price: Decimal | float | str,
    *,
    stop_loss: Decimal | float | str | None = None,
    take_profit: Decimal | float | str | None = None,
    leverage: Decimal | float | str = 1,
    opened_at: datetime | None = None,
    metadata: dict | None = None,
) -> PositionRecord:
    """Open a position at `entry_price`; mark it with `update_position`, end it with `close_position`."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    opened = utc(opened_at) or clock.now()
    return insert_record(
        conn,
        Position,
        PositionRecord,
        symbol=symbol,
        exchange=exchange,
        side=side,
        quantity=money(quantity),
        entry_price=money(entry_price),
        current_price=money(entry_price),
        stop_loss=money(stop_loss),
        take_profit=money(take_profit),
        leverage=money(leverage),
        status="open",
        opened_at=opened,
        updated_at=opened,
        metadata=metadata or {},
    )


def get_position(conn: sa.Connection, position_id: int) -> PositionRecord | None:
    """One position by id, open or closed, or None."""
    t = Position.__table__
    return fetch_one(conn, sa.select(t).where(t.c.id == position_id), PositionRecord)


def get_open_positions(
    conn: sa.Connection, symbol: str | None = None, exchange: str | None = None
) -> list[PositionRecord]:
    """Open positions, oldest first."""
    t = Position.__table__
    stmt = sa.select(t).where(t.c.status == "open")
    if symbol is not None:
        stmt = stmt.where(t.c.symbol == symbol)
    if exchange is not None:
        stmt = stmt.where(t.c.exchange == exchange)
    return fetch_all(conn, stmt.order_by(t.c.opened_at, t.c.id), PositionRecord)


def update_position(
    conn: sa.Connection,
    position_id: int,
    *,
    current_price: Decimal | float | str | None = None,
    quantity: Decimal | float | str | None = None,
    stop_loss: Decimal | float | str | None = None,
    take_profit: Decimal | float | str | None = None,
    metadata: dict | None = None,
) -> PositionRecord:
    """Mark an open position to `current_price` (unrealized PnL recomputed in SQL) or change its size/stops."""
    t = Position.__table__
    values: dict[str, Any] = {"updated_at": sa.func.now()}
    qty = t.c.quantity
    if quantity is not None:
        qty = sa.cast(sa.literal(money(quantity)), t.c.quantity.type)
        values["quantity"] = qty
    if current_price is not None:
        values["current_price"] = sa.cast(sa.literal(money(current_price)), t.c.current_price.type)
    for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if value is not None:
            values[name] = money(value)
    if metadata is not None:
        values["metadata"] = metadata
    price = values.get("current_price", t.c.current_price)
    values["unrealized_pnl"] = sa.func.coalesce((price - t.c.entry_price) * qty * _direction(t.c.side), 0)
    stmt = sa.update(t).where(t.c.id == position_id, t.c.status == "open").values(values).returning(*t.c)
    updated = fetch_one(conn, stmt, PositionRecord)
    if updated is not None:
        return updated
    existing = get_position(conn, position_id)
    if existing is None:
        raise NotFoundError(f"no position {position_id}")
    raise ValueError(f"position {position_id} is closed; it cannot be updated")


def close_position(
    conn: sa.Connection,
    position_id: int,
    exit_price: Decimal | float | str,
    *,
    closed_at: datetime | None = None,
) -> PositionRecord:
    """Close at `exit_price`: realized PnL grows by (exit - entry) * quantity * direction, unrealized is 0.

    Closing a closed position changes nothing and returns it as stored.
    """
    t = Position.__table__
    price = sa.cast(sa.literal(money(exit_price)), t.c.current_price.type)
    closed = utc(closed_at) or clock.now()
    stmt = (
        sa.update(t)
        .where(t.c.id == position_id, t.c.status == "open")
        .values(
            current_price=price,
            realized_pnl=t.c.realized_pnl + (price - t.c.entry_price) * t.c.quantity * _direction(t.c.side),
            unrealized_pnl=0,
            status="closed",
            closed_at=closed,
            updated_at=closed,
        )
        .returning(*t.c)
    )
    record = fetch_one(conn, stmt, PositionRecord)
    if record is not None:
        return record
    existing = get_position(conn, position_id)
    if existing is None:
        raise NotFoundError(f"no position {position_id}")
    return existing
