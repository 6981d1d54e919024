"""Technical features per candle series, versioned as a feature set, computed partition by partition.

The indicators themselves (outputs, inputs, warm-up, computation) are declared in `resources.indicators`;
this module names the feature sets and reads and computes them per series and window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.indicators import (
    CONVERGENCE,
    FEATURE_COLUMNS,
    INDICATORS,
    FeatureParams,
    Indicator,
    compute_features,
    feature_inputs,
    memory_bars,
    session_vwap,
    warmup_bars,
    warmup_by_indicator,
)
from market_warehouse.resources.models import TRADE_PRICE, Feature, Ohlcv

__all__ = [
    "CONVERGENCE",
    "CORE_V1",
    "FEATURE_COLUMNS",
    "FEATURE_SETS",
    "INDICATORS",
    "FeatureParams",
    "FeatureSet",
    "Indicator",
    "compute_features",
    "feature_inputs",
    "features_for_window",
    "memory_bars",
    "read_candles",
    "read_features",
    "series_in_window",
    "session_vwap",
    "warmup_bars",
    "warmup_by_indicator",
]

SERIES_KEY = ["exchange", "symbol", "interval"]


@dataclass(frozen=True)
class FeatureSet:
    name: str
    params: FeatureParams = field(default_factory=FeatureParams)

    def describe(self) -> dict[str, Any]:
        return {"feature_set": self.name, **asdict(self.params), "convergence": CONVERGENCE}


CORE_V1 = FeatureSet("core_v1")
FEATURE_SETS = {CORE_V1.name: CORE_V1}


def series_in_window(conn: sa.Connection, start: datetime, end: datetime) -> list[tuple[str, str, str]]:
    """(exchange, symbol, interval) series having traded-price candles in [start, end): features are of
    traded prices, never of mark or index candles (issue 13)."""
    query = (
        sa.select(Ohlcv.exchange, Ohlcv.symbol, Ohlcv.interval)
        .where(Ohlcv.price == TRADE_PRICE, Ohlcv.time >= start, Ohlcv.time < end)
        .distinct()
        .order_by(Ohlcv.exchange, Ohlcv.symbol, Ohlcv.interval)
    )
    return [tuple(row) for row in conn.execute(query)]


def read_candles(
    conn: sa.Connection,
    series: tuple[str, str, str],
    start: datetime,
    end: datetime,
    warmup: int = 0,
) -> pd.DataFrame:
    """Traded-price candles of [start, end) plus the `warmup` bars before `start` (counted in bars, so gaps
    do not shorten the history), sorted by time."""
    exchange, symbol, interval = series
    cols = [Ohlcv.time, Ohlcv.open, Ohlcv.high, Ohlcv.low, Ohlcv.close, Ohlcv.volume]
    same_series = (
        Ohlcv.exchange == exchange,
        Ohlcv.symbol == symbol,
        Ohlcv.interval == interval,
        Ohlcv.price == TRADE_PRICE,
    )
    day = sa.select(*cols).where(*same_series, Ohlcv.time >= start, Ohlcv.time < end)
    parts = [day]
    if warmup > 0:
        before = (
            sa.select(*cols).where(*same_series, Ohlcv.time < start).order_by(Ohlcv.time.desc()).limit(warmup)
        )
        parts.append(sa.select(before.subquery()))
    query = sa.union_all(*parts).order_by("time") if len(parts) > 1 else day.order_by(Ohlcv.time)
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.key for c in cols])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.reset_index(drop=True)


def features_for_window(
    conn: sa.Connection, series: tuple[str, str, str], start: datetime, end: datetime, fs: FeatureSet
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature rows of `series` for [start, end) and the candles read (warm-up included)."""
    candles = read_candles(conn, series, start, end, warmup=warmup_bars(fs.params))
    if candles.empty:
        return pd.DataFrame(columns=[*SERIES_KEY, "feature_set", "time", *FEATURE_COLUMNS]), candles
    feats = compute_features(candles, fs.params)
    feats = feats[feats["time"] >= pd.Timestamp(start)].reset_index(drop=True)
    exchange, symbol, interval = series
    feats.insert(0, "feature_set", fs.name)
    feats.insert(0, "interval", interval)
    feats.insert(0, "symbol", symbol)
    feats.insert(0, "exchange", exchange)
    feats[FEATURE_COLUMNS] = feats[FEATURE_COLUMNS].astype("float64")
    return feats, candles


def read_features(
    conn: sa.Connection, series: tuple[str, str, str], feature_set: str, start: datetime, end: datetime
) -> pd.DataFrame:
    exchange, symbol, interval = series
    query = (
        sa.select(Feature.time, *[getattr(Feature, c) for c in FEATURE_COLUMNS])
        .where(
            Feature.exchange == exchange,
            Feature.symbol == symbol,
            Feature.interval == interval,
            Feature.feature_set == feature_set,
            Feature.time >= start,
            Feature.time < end,
        )
        .order_by(Feature.time)
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=["time", *FEATURE_COLUMNS])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame
