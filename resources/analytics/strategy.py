"""The reference strategy: a long-only moving-average crossover with stop-loss and take-profit, simulated
bar by bar with fees and slippage.

Timing, so that nothing looks ahead and every row has one owner day:
- a crossover is known at the close of bar i, which is the open of bar i+1: the signal is stamped there
  and filled at that bar's open (plus slippage) — a signal whose next bar is missing lapses;
- stop-loss / take-profit are checked against each bar's low/high after the entry; a bar that touches both
  is taken as a stop (the pessimistic reading of an OHLC bar); a fill inside bar i is stamped with bar i's
  open time, its price is the stop/target level (or the open when the bar gaps through it);
- equity is marked at each bar's close and stamped with the close time.
Money is `Decimal` at the scale of the warehouse's numeric columns, so sums in SQL equal sums here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import pandas as pd
import talib

MONEY = Decimal("1e-10")


@dataclass(frozen=True)
class StrategyParams:
    name: str = "sma_cross"
    fast: int = 10
    slow: int = 30
    stop_loss: float = 0.02  # fraction below the entry price
    take_profit: float = 0.04  # fraction above the entry price
    fee_rate: float = 0.001  # of the notional, per fill
    slippage_bps: float = 5.0  # market fills (entries, signal exits, stops) pay this much
    initial_capital: float = 10_000.0  # per series
    allocation: float = 1.0  # fraction of cash put into each entry
    quantity_decimals: int = 8

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def money(value: Decimal | float | str) -> Decimal:
    return Decimal(str(value)).quantize(MONEY)


@dataclass
class _Position:
    correlation_id: str
    entry_time: pd.Timestamp
    entry_price: Decimal
    quantity: Decimal
    entry_fee: Decimal
    stop: Decimal
    target: Decimal


@dataclass
class Simulation:
    signals: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)  # closed round trips
    equity: list[dict[str, Any]] = field(default_factory=list)  # per bar close
    open_position: dict[str, Any] | None = None

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "signals": pd.DataFrame(self.signals),
            "fills": pd.DataFrame(self.fills),
            "trades": pd.DataFrame(self.trades),
            "equity": pd.DataFrame(self.equity),
        }


def crossovers(close: np.ndarray, p: StrategyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fast/slow SMAs and where fast crosses above (+1) / below (-1) slow at a bar's close."""
    fast = talib.SMA(close, timeperiod=p.fast)
    slow = talib.SMA(close, timeperiod=p.slow)
    above = fast > slow
    valid = ~(np.isnan(fast) | np.isnan(slow))
    prev_valid = np.concatenate([[False], valid[:-1]])
    prev_above = np.concatenate([[False], above[:-1]])
    up = valid & prev_valid & above & ~prev_above
    down = valid & prev_valid & ~above & prev_above & (fast < slow)
    return fast, slow, up, down


class _Simulator:
    def __init__(self, candles: pd.DataFrame, step: timedelta, p: StrategyParams, series_id: str):
        self.c, self.step, self.p, self.series_id = candles.reset_index(drop=True), step, p, series_id
        self.fee = Decimal(str(p.fee_rate))
        self.slip = Decimal(str(p.slippage_bps)) / Decimal(10_000)
        self.lot = Decimal(1).scaleb(-p.quantity_decimals)
        self.cash = money(p.initial_capital)
        self.pos: _Position | None = None
        self.out = Simulation()

    def run(self) -> Simulation:
        c = self.c
        close = c["close"].to_numpy(dtype="float64")
        fast, slow, up, down = crossovers(close, self.p)
        times = list(c["time"])
        pending: dict[str, Any] | None = None
        for i, t_open in enumerate(times):
            if pending is not None:
                if pending["time"] == t_open:  # the next bar is there: execute at its open
                    self._execute_pending(pending, i)
                pending = None
            if self.pos is not None:
                self._check_exit_levels(i)
            t_close = t_open + self.step
            indicators = {"sma_fast": float(fast[i]), "sma_slow": float(slow[i])} if up[i] or down[i] else {}
            if up[i] and self.pos is None:
                pending = self._signal(t_close, "buy", close[i], fast[i], slow[i], indicators)
            elif down[i] and self.pos is not None:
                pending = self._signal(t_close, "sell", close[i], fast[i], slow[i], indicators)
            self._mark(t_close, close[i])
        if self.pos is not None:
            self.out.open_position = {
                "correlation_id": self.pos.correlation_id,
                "entry_time": self.pos.entry_time,
                "entry_price": self.pos.entry_price,
                "quantity": self.pos.quantity,
                "entry_fee": self.pos.entry_fee,
            }
        return self.out

    def _signal(self, t, kind, price, fast, slow, indicators) -> dict[str, Any]:
        p = self.p
        row = {
            "time": t,
            "signal_type": kind,
            "strength": float((fast - slow) / slow),
            "entry_price": float(price),
            "stop_loss": float(price * (1 - p.stop_loss)) if kind == "buy" else None,
            "target_price": float(price * (1 + p.take_profit)) if kind == "buy" else None,
            "executed": False,
            "executed_at": None,
            "execution_price": None,
            "exit_price": None,
            "realized_pnl": None,
            "reason": "crossover",
            "indicators": indicators,
        }
        self.out.signals.append(row)
        return row

    def _execute_pending(self, signal: dict[str, Any], i: int) -> None:
        t_open = self.c["time"].iat[i]
        open_ = Decimal(repr(float(self.c["open"].iat[i])))
        if signal["signal_type"] == "buy":
            price = money(open_ * (1 + self.slip))
            budget = self.cash * Decimal(str(self.p.allocation))
            quantity = (budget / (price * (1 + self.fee))).quantize(self.lot, rounding=ROUND_DOWN)
            if quantity <= 0:
                signal["reason"] = "no cash"
                return
            fee = money(quantity * price * self.fee)
            self.cash -= quantity * price + fee
            cid = f"{self.series_id}:{t_open.strftime('%Y%m%dT%H%M%SZ')}"
            self.pos = _Position(
                cid,
                t_open,
                price,
                quantity,
                fee,
                stop=money(price * (1 - Decimal(str(self.p.stop_loss)))),
                target=money(price * (1 + Decimal(str(self.p.take_profit)))),
            )
            signal.update(executed=True, executed_at=t_open, execution_price=float(price), correlation_id=cid)
            self._fill(t_open, "buy", "market", price, quantity, fee, None, "crossover", signal)
        else:
            price = money(open_ * (1 - self.slip))
            self._exit(t_open, price, "crossover", "market", signal)

    def _check_exit_levels(self, i: int) -> None:
        pos = self.pos
        row = self.c.iloc[i]
        open_, low, high = (Decimal(repr(float(row[k]))) for k in ("open", "low", "high"))
        entered_now = pos.entry_time == row["time"]
        if not entered_now and open_ <= pos.stop:
            reason, kind, price = "stop_loss", "stop", money(open_ * (1 - self.slip))
        elif low <= pos.stop:
            reason, kind, price = "stop_loss", "stop", money(pos.stop * (1 - self.slip))
        elif not entered_now and open_ >= pos.target:
            reason, kind, price = "take_profit", "limit", money(open_)
        elif high >= pos.target:
            reason, kind, price = "take_profit", "limit", pos.target
        else:
            return
        t_open = row["time"]
        signal = {
            "time": t_open,
            "signal_type": "sell",
            "strength": None,
            "entry_price": float(pos.entry_price),
            "stop_loss": float(pos.stop),
            "target_price": float(pos.target),
            "executed": False,
            "executed_at": None,
            "execution_price": None,
            "exit_price": None,
            "realized_pnl": None,
            "reason": reason,
            "indicators": {},
        }
        self.out.signals.append(signal)
        self._exit(t_open, price, reason, kind, signal)

    def _exit(self, t, price: Decimal, reason: str, order_type: str, signal: dict[str, Any]) -> None:
        pos = self.pos
        fee = money(pos.quantity * price * self.fee)
        self.cash += pos.quantity * price - fee
        gross = money(pos.quantity * (price - pos.entry_price))
        pnl = gross - pos.entry_fee - fee
        signal.update(
            executed=True,
            executed_at=t,
            execution_price=float(price),
            entry_price=float(pos.entry_price),
            exit_price=float(price),
            realized_pnl=pnl,
            correlation_id=pos.correlation_id,
        )
        self._fill(t, "sell", order_type, price, pos.quantity, fee, pnl, reason, signal)
        cost = pos.quantity * pos.entry_price
        self.out.trades.append(
            {
                "correlation_id": pos.correlation_id,
                "entry_time": pos.entry_time,
                "exit_time": t,
                "entry_price": pos.entry_price,
                "exit_price": price,
                "quantity": pos.quantity,
                "fees": pos.entry_fee + fee,
                "realized_pnl": pnl,  # net of both fills' fees
                "gross_pnl": gross,
                "gross_pnl_pct": float(gross / cost) if cost else None,
                "exit_reason": reason,
            }
        )
        self.pos = None

    def _fill(self, t, side, order_type, price, quantity, fee, pnl, reason, signal) -> None:
        self.out.fills.append(
            {
                "correlation_id": (self.pos.correlation_id if self.pos else signal.get("correlation_id")),
                "executed_at": t,
                "side": side,
                "order_type": order_type,
                "price": price,
                "quantity": quantity,
                "fees": fee,
                "realized_pnl": pnl,
                "reason": reason,
                "signal_time": signal["time"],
                "signal_type": signal["signal_type"],
            }
        )

    def _mark(self, t_close, close: float) -> None:
        qty = self.pos.quantity if self.pos else Decimal(0)
        equity = self.cash + qty * Decimal(repr(float(close)))
        self.out.equity.append(
            {"time": t_close, "cash": self.cash, "quantity": qty, "close": close, "equity": money(equity)}
        )


def simulate(candles: pd.DataFrame, step: timedelta, p: StrategyParams, series_id: str) -> Simulation:
    """Run the strategy over `candles` (time, open, high, low, close; sorted, tz-aware UTC)."""
    return _Simulator(candles, step, p, series_id).run()
