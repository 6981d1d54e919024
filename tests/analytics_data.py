"""Small deterministic candle series for the analytics tests (a seeded geometric random walk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.models import Ohlcv


def random_walk_candles(
    n: int,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    step: timedelta = timedelta(hours=1),
    seed: int = 7,
    price: float = 30_000.0,
    vol: float = 0.01,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    closes = price * np.exp(np.cumsum(rng.normal(0, vol, n)))
    opens = np.concatenate([[price], closes[:-1]])
    wiggle = np.abs(rng.normal(0, vol / 2, (2, n)))
    highs = np.maximum(opens, closes) * (1 + wiggle[0])
    lows = np.minimum(opens, closes) * (1 - wiggle[1])
    volume = rng.lognormal(3, 0.5, n)
    times = pd.date_range(start, periods=n, freq=step, tz="UTC")
    return pd.DataFrame(
        {"time": times, "open": opens, "high": highs, "low": lows, "close": closes, "volume": volume}
    )


def store_candles(
    engine: sa.Engine, candles: pd.DataFrame, exchange="synthetic", symbol="BTC/USDT", interval="1h"
) -> None:
    rows = candles.assign(exchange=exchange, symbol=symbol, interval=interval, source="test")
    records = rows.to_dict("records")
    for rec in records:
        rec["time"] = rec["time"].to_pydatetime()
    with engine.begin() as conn:
        conn.execute(sa.insert(Ohlcv), records)
