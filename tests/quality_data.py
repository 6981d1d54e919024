"""Small frames for the data-quality tests: clean candles of one series, then each test breaks some."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

NOW = datetime(2025, 1, 1, tzinfo=UTC)
START = pd.Timestamp("2024-06-01", tz="UTC")


def candles(
    n: int = 10,
    *,
    start: pd.Timestamp = START,
    interval: str = "1h",
    symbol: str = "BTC/USDT",
    seed: int = 0,
    price: float = 100.0,
) -> pd.DataFrame:
    """A clean random-walk series of closed candles."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(interval.replace("m", "min")) if interval.endswith("m") else pd.Timedelta(interval)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[price], close[:-1]])
    return pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": symbol,
            "interval": interval,
            "time": start + step * np.arange(n),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )


def table(engine: sa.Engine, name: str, order: str = "") -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {name} {order}"), conn)


def count(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar())
