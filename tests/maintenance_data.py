"""Data and probes of the maintenance tests: candles and trades to upsert, counts, pieces, capabilities.

A helper module, not a test module: `test_maintenance.py` and `test_maintenance_plan.py` both read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.backend import Capabilities, detect
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR
from market_warehouse.resources.maintenance.pieces import list_pieces


def caps_of(engine: sa.Engine) -> Capabilities:
    with engine.connect() as conn:
        return detect(conn)


def candles(symbol: str, start: datetime, count: int, interval: str = "1m", seed: int = 1) -> pd.DataFrame:
    """`count` candles of `interval` from `start`, random walk prices, vwap inside [low, high]."""
    rng = np.random.default_rng(seed)
    step = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": HOUR, "1d": DAY}[interval]
    close = 100 + np.cumsum(rng.normal(0, 1, count))
    open_ = close + rng.normal(0, 0.5, count)
    high = np.maximum(open_, close) + rng.uniform(0, 1, count)
    low = np.minimum(open_, close) - rng.uniform(0, 1, count)
    volume = rng.uniform(1, 10, count)
    return pd.DataFrame(
        {
            "exchange": "testex",
            "symbol": symbol,
            "interval": interval,
            "time": pd.date_range(start, periods=count, freq=step, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "quote_volume": volume * close,
            "trades_count": rng.integers(1, 50, count),
            "vwap": (high + low + close) / 3,
        }
    )


def trades(start: datetime, count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exchange": "testex",
            "symbol": "BTC/USDT",
            "trade_id": [f"{start:%Y%m%d%H}-{i}" for i in range(count)],
            "time": pd.date_range(start, periods=count, freq="1s", tz="UTC"),
            "price": 100.0,
            "amount": 1.0,
        }
    )


def count(engine: sa.Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def pieces_of(engine: sa.Engine, table: str) -> dict[str, object]:
    caps = caps_of(engine)
    with engine.connect() as conn:
        return {p.name: p for p in list_pieces(conn, caps, table) if not p.is_default}
