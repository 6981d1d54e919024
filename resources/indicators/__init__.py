"""Technical indicators, declared once: what each computes, from which candle columns, with how much history.

The lowest layer of `resources/` (numpy, pandas and TA-Lib only): the `features` table's value columns are
made from these declarations (`resources.models.analytics.Feature`), the feature computation, its warm-up and
the Dagster column lineage read them too, so a new feature is one entry of INDICATORS (plus the migration
Alembic generates from the model).

A daily partition must give the same numbers as a computation over the whole series. Rolling-window
indicators need `window` bars of history; EMA- and Wilder-smoothed indicators (MACD, RSI, ATR) have infinite
memory, so the history read before the day is long enough that the influence of where the series starts has
decayed below `CONVERGENCE` (relative): (1 - alpha) ** n <= CONVERGENCE. TA-Lib computes the indicators.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import talib
from talib import abstract

# Relative weight left on the state at the start of the history read; 1e-14 keeps partition results within
# ~1e-13 (relative to the price level) of the whole-series values.
CONVERGENCE = 1e-14


@dataclass(frozen=True)
class FeatureParams:
    """Indicator windows; changing any of them is a new feature set (name + version)."""

    volatility_window: int = 20  # std of log returns, per bar (not annualized)
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_stddev: float = 2.0
    atr_period: int = 14
    volume_window: int = 20  # z-score of volume against the trailing window including the bar


def memory_bars(alpha: float, tolerance: float = CONVERGENCE) -> int:
    """Bars after which an exponential smoother with factor `alpha` has forgotten its seed to `tolerance`."""
    return math.ceil(math.log(tolerance) / math.log(1.0 - alpha))


def _lookback(name: str, **params: Any) -> int:
    function = abstract.Function(name)
    if params:
        function.parameters = params
    return int(function.lookback)


def _floats(candles: pd.DataFrame, *columns: str) -> list[np.ndarray]:
    return [candles[c].to_numpy(dtype="float64") for c in columns]


def _log_return(candles: pd.DataFrame) -> np.ndarray:
    (close,) = _floats(candles, "close")
    return np.concatenate([[np.nan], np.diff(np.log(close))])


def _volatility(candles: pd.DataFrame, p: FeatureParams) -> tuple[np.ndarray]:
    return (pd.Series(_log_return(candles)).rolling(p.volatility_window).std(ddof=1).to_numpy(),)


def _macd(candles: pd.DataFrame, p: FeatureParams) -> tuple[np.ndarray, ...]:
    (close,) = _floats(candles, "close")
    return talib.MACD(close, fastperiod=p.macd_fast, slowperiod=p.macd_slow, signalperiod=p.macd_signal)


def _bbands(candles: pd.DataFrame, p: FeatureParams) -> tuple[np.ndarray, ...]:
    (close,) = _floats(candles, "close")
    return talib.BBANDS(
        close, timeperiod=p.bb_period, nbdevup=p.bb_stddev, nbdevdn=p.bb_stddev, matype=talib.MA_Type.SMA
    )


def _volume_zscore(candles: pd.DataFrame, p: FeatureParams) -> tuple[np.ndarray]:
    volume = pd.Series(*_floats(candles, "volume"))
    rolling = volume.rolling(p.volume_window)
    std = rolling.std(ddof=1)
    return (((volume - rolling.mean()) / std.where(std > 0)).to_numpy(),)


@dataclass(frozen=True)
class Indicator:
    """One indicator, declared once: the `features` columns it writes, the candle columns it reads (the
    Dagster column lineage of those columns is made from them), the bars of history it needs before a day
    (so a day computed alone equals the whole series) and how it computes them (one array per output, in
    order). A new feature is one entry of INDICATORS: the `Feature` model makes a float column of each
    output, and tests/test_schema.py's drift test fails until the migration Alembic generates from it
    (`alembic revision --autogenerate`) is added."""

    name: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    warmup: Callable[[FeatureParams], int]
    compute: Callable[[pd.DataFrame, FeatureParams], Sequence[np.ndarray]]


INDICATORS: tuple[Indicator, ...] = (
    Indicator("log_return", ("log_return",), ("close",), lambda p: 1, lambda c, p: (_log_return(c),)),
    Indicator("volatility", ("volatility",), ("close",), lambda p: p.volatility_window, _volatility),
    Indicator(
        "rsi",
        ("rsi",),
        ("close",),
        lambda p: _lookback("RSI", timeperiod=p.rsi_period) + memory_bars(1.0 / p.rsi_period),
        lambda c, p: (talib.RSI(*_floats(c, "close"), timeperiod=p.rsi_period),),
    ),
    Indicator(
        "macd",
        ("macd", "macd_signal", "macd_hist"),
        ("close",),
        lambda p: (
            _lookback("MACD", fastperiod=p.macd_fast, slowperiod=p.macd_slow, signalperiod=p.macd_signal)
            + memory_bars(2.0 / (p.macd_slow + 1))
            + memory_bars(2.0 / (p.macd_signal + 1))
        ),
        _macd,
    ),
    Indicator(
        "bbands",
        ("bb_upper", "bb_middle", "bb_lower"),
        ("close",),
        lambda p: _lookback("BBANDS", timeperiod=p.bb_period),
        _bbands,
    ),
    Indicator(
        "atr",
        ("atr",),
        ("high", "low", "close"),
        lambda p: _lookback("ATR", timeperiod=p.atr_period) + memory_bars(1.0 / p.atr_period),
        lambda c, p: (talib.ATR(*_floats(c, "high", "low", "close"), timeperiod=p.atr_period),),
    ),
    # Session VWAP restarts every UTC day: no history needed.
    Indicator(
        "vwap", ("vwap",), ("high", "low", "close", "volume"), lambda p: 0, lambda c, p: (session_vwap(c),)
    ),
    Indicator(
        "volume_zscore", ("volume_zscore",), ("volume",), lambda p: p.volume_window - 1, _volume_zscore
    ),
)

# The values a feature set computes per candle, in declaration order.
FEATURE_COLUMNS = [column for indicator in INDICATORS for column in indicator.outputs]


def feature_inputs() -> dict[str, tuple[str, ...]]:
    """Feature column -> the candle columns it is computed from (for column lineage)."""
    return {column: indicator.inputs for indicator in INDICATORS for column in indicator.outputs}


def warmup_by_indicator(p: FeatureParams) -> dict[str, int]:
    """Bars of history before a day that each indicator needs to reproduce the whole-series value."""
    return {indicator.name: indicator.warmup(p) for indicator in INDICATORS}


def warmup_bars(p: FeatureParams) -> int:
    return max(warmup_by_indicator(p).values())


def compute_features(candles: pd.DataFrame, p: FeatureParams) -> pd.DataFrame:
    """Features for every bar of `candles` (columns time, open, high, low, close, volume; sorted by time).

    Bars without enough history get NaN; the caller drops the warm-up bars.
    """
    out = pd.DataFrame({"time": candles["time"].to_numpy()}, index=candles.index)
    for indicator in INDICATORS:
        values = indicator.compute(candles, p)
        if len(values) != len(indicator.outputs):
            raise ValueError(
                f"indicator {indicator.name!r} computed {len(values)} arrays for outputs {indicator.outputs}"
            )
        for column, array in zip(indicator.outputs, values, strict=True):
            out[column] = array
    return out


def session_vwap(candles: pd.DataFrame) -> np.ndarray:
    """VWAP of typical price since the start of each UTC day (the intraday session of a 24/7 market)."""
    typical = (candles["high"] + candles["low"] + candles["close"]) / 3.0
    day = pd.to_datetime(candles["time"], utc=True).dt.floor("D")
    pv = (typical * candles["volume"]).groupby(day).cumsum()
    cum_volume = candles["volume"].groupby(day).cumsum()
    return (pv / cum_volume.where(cum_volume > 0)).to_numpy(dtype="float64")
