"""Every storage operation, declared once in `OPERATIONS`; `Warehouse` and `AsyncWarehouse` are generated from it.

An operation is a function of `resources.warehouse.ops.<domain>`, one module per domain of
`resources.models` (`market`, `analytics`, `trading`, `operations`; `common` and `frames` hold what they
share). Its first argument says where it runs, and so how each API wraps it:

- "transaction": a sync SQLAlchemy `Connection`. `Warehouse` runs it in `engine.begin()`;
  `AsyncWarehouse` runs the very same function on asyncpg through `AsyncConnection.run_sync`
  (SQLAlchemy's own bridge: the statements are awaited on the event loop, the function does not see it).
- "reader": a `Source`, a connection or the API's ADBC `ArrowReader` (committed data at wire speed);
  both APIs run it on their reader, the async one in a worker thread.
- "engine": a sync `Engine`, for the bulk upserts (COPY through psycopg2); the async API runs it in a
  worker thread on a psycopg2 engine of its own.

So each query and each row -> record mapping exists once, and a caller holding a connection (a Dagster
asset, a script) can call the functions inside its own transaction. Adding an operation: write the
function in its domain module, add it to `OPERATIONS`; both classes (and the parity test) follow.

Analytical SQL lives in `sql/common/*.sql`; inserts and updates are SQLAlchemy Core on the models, so
column names come from the schema rather than from strings. Parameters of the SQL files are always bound
(time bounds default to the ends of the timestamptz range rather than NULL) so asyncpg can type them and
the planner can prune partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from market_warehouse.resources.warehouse.ops import analytics, instruments, market, operations, trading
from market_warehouse.resources.warehouse.ops.common import as_method

Runs = Literal["transaction", "reader", "engine"]
C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class Operation:
    """One method of both APIs: the function, and what its first argument is (see the module doc)."""

    fn: Callable[..., Any]
    runs: Runs

    @property
    def name(self) -> str:
        return self.fn.__name__


def _declare(runs: Runs, *functions: Callable[..., Any]) -> tuple[Operation, ...]:
    return tuple(Operation(fn, runs) for fn in functions)


OPERATIONS: tuple[Operation, ...] = (
    # market data (resources.models.market)
    *_declare("engine", market.insert_ohlcv, market.insert_market_trades),
    *_declare("reader", market.get_ohlcv, market.get_ohlcv_frame, market.get_market_trades_frame),
    *_declare(
        "transaction",
        market.get_latest_ohlcv,
        market.get_latest_candles,
        market.get_ohlcv_gaps,
        market.get_price_stats,
        market.get_volume_profile,
        market.get_market_trades,
        market.insert_orderbook_snapshot,
        market.get_orderbook_snapshots,
        market.get_latest_orderbook,
    ),
    # instruments, funding rates and open interest (resources.models.market, issue 13)
    *_declare("engine", instruments.insert_funding_rates, instruments.insert_open_interest),
    *_declare(
        "transaction",
        instruments.upsert_instruments,
        instruments.get_instruments,
        instruments.get_funding_rates,
        instruments.get_open_interest,
    ),
    # derived analytics (resources.models.analytics)
    *_declare("reader", analytics.get_features_frame),
    # trading (resources.models.trading)
    *_declare(
        "transaction",
        trading.log_agent_decision,
        trading.update_agent_decision,
        trading.get_agent_decisions,
        trading.insert_signal,
        trading.get_signals,
        trading.mark_signal_executed,
        trading.close_signal,
        trading.get_strategy_performance,
        trading.log_trade,
        trading.log_equity_snapshot,
        trading.log_risk_metrics,
        trading.get_trade_history,
        trading.get_equity_curve,
        trading.get_risk_metrics,
        trading.insert_bot_trade,
        trading.update_bot_trade,
        trading.close_bot_trade,
        trading.get_bot_trade,
        trading.get_recent_bot_trades,
        trading.get_bot_trades_by_symbol,
        trading.get_bot_trade_statistics,
        trading.open_position,
        trading.get_position,
        trading.get_open_positions,
        trading.update_position,
        trading.close_position,
    ),
    # the system's own journals and administration (resources.models.operations)
    *_declare(
        "transaction",
        operations.log_iteration,
        operations.log_audit_report,
        operations.log_event,
        operations.get_recent_events,
        operations.get_table_sizes,
    ),
)


def with_operations(**wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[C], C]:
    """Class decorator: one method per operation, `wrap[op.runs](op.fn)`, named, documented and signed like
    the function with `self` in place of its first argument. Every kind of `Runs` needs a wrapper."""
    missing = set(Runs.__args__) - set(wrap)
    if missing:
        raise TypeError(f"no wrapper for operations that run on {sorted(missing)}")

    def install(cls: C) -> C:
        for op in OPERATIONS:
            if op.name in vars(cls):
                raise TypeError(f"{cls.__name__}.{op.name} is written by hand and declared in OPERATIONS")
            setattr(cls, op.name, as_method(op.fn, wrap[op.runs](op.fn)))
        return cls

    return install
