"""Shared data of the storage-API tests (sync and async): one deterministic series and a known set of trades.

A helper module, not a test module: `test_warehouse_api.py` and `test_warehouse_async.py` both read it, so
neither test module imports the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

T0 = datetime(2024, 3, 4, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SERIES = ("binance", "BTC/USDT", "1m")


def candle_frame(n: int = 240, start: datetime = T0, step: timedelta = MINUTE, seed: int = 7) -> pd.DataFrame:
    """A seeded random walk of `n` candles of one series."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.1, n))
    return pd.DataFrame(
        {
            "exchange": SERIES[0],
            "symbol": SERIES[1],
            "interval": SERIES[2],
            "time": pd.date_range(start, periods=n, freq=step, tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 50, n),
        }
    )


# (side, entry, exit, quantity, fees) -> realized PnL before fees: +20, -5, -10, 0, +6
KNOWN_TRADES = [
    ("long", "100", "110", "2", "1"),
    ("short", "50", "55", "1", "0.5"),
    ("long", "10", "9", "10", "0.2"),
    ("long", "20", "20", "3", "0.1"),
    ("long", "30", "36", "1", "0.3"),
]
