"""A deterministic, seeded exchange for the offline demo and tests, speaking ccxt's unified API.

It answers `load_markets`, `fetch_ohlcv` (and the mark / index / premium index candles of its perpetuals),
`fetch_trades`, `fetch_order_book`, `fetch_ticker`, `fetch_funding_rate_history` and
`fetch_open_interest_history` with ccxt's structures, so the pull code in `client.py` runs unchanged
against it and against a real ccxt exchange. Every configured pair is listed twice, as spot `BASE/QUOTE`
and as the linear perpetual `BASE/QUOTE:QUOTE` on the same price path (so the two are distinct instruments
with the same underlying, as on a real exchange).

The price is a geometric Brownian motion. Determinism does not depend on the window asked for: the price at
each UTC day's open is a random walk from 2015-01-01 (one draw per day, in fixed blocks), and inside a day
the minute path is a Brownian bridge between two consecutive day opens, drawn from a generator seeded by
(seed, symbol, day). Every minute has at least four trades: the first at the open, the last at the close,
one at the high and one at the low (the high and low are drawn from the exact distribution of a Brownian
bridge's extremes), so candles of every interval are exact aggregates of the trades, and the same
(seed, symbol, time) gives the same numbers whatever window, page size or interval is requested.
Equity calendars only change which candles and trades exist (sessions), not the path underneath.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from market_warehouse.resources.clock import now as clock_now
from market_warehouse.resources.exchanges.calendars import (
    TWENTY_FOUR_SEVEN,
    expected_bars,
    floor_time,
    last_trading_instant,
    trading_spans,
)
from market_warehouse.resources.intervals import interval_to_timedelta

ORIGIN = pd.Timestamp("2015-01-01", tz="UTC")
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES = 1440
_BLOCK = 1024  # days of daily draws per generator, so any day's level is a sum over fixed blocks
_FUNDING_MS = 8 * 3_600_000

# Streams of the seed sequence: each kind of randomness has its own, so adding one never shifts another.
_DAILY, _MINUTES, _TRADES, _BOOK, _FUNDING, _OPEN_INTEREST = range(6)

# A perpetual's mark and index prices sit this far (relative) above / below its traded price: constant,
# so the premium index candle is a known number and the three series are visibly distinct.
_MARK_PREMIUM, _INDEX_DISCOUNT = 2e-4, 1e-4

_KNOWN_PRICES = {"BTC": 42_000.0, "ETH": 2_400.0, "SOL": 100.0, "BNB": 300.0, "SPY": 470.0, "AAPL": 190.0}


@dataclass(frozen=True)
class _Model:
    """Per-symbol parameters, derived from the symbol's name so any symbol works without configuration."""

    key: int
    price0: float
    sigma_day: float
    volume_day: float
    tick: float
    lot: float


@dataclass(frozen=True)
class _Day:
    """One UTC day of one symbol: minute candles and the trades they aggregate."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    trades: np.ndarray
    trade_ms: np.ndarray  # ms since the day's start, sorted
    trade_price: np.ndarray
    trade_amount: np.ndarray
    trade_buy: np.ndarray


class SyntheticExchange:
    """The subset of a ccxt exchange the pipelines use, backed by the deterministic model above."""

    id = "synthetic"
    rateLimit = 0
    precisionMode = ccxt.TICK_SIZE  # `precision` of a market holds the tick and lot sizes themselves
    timeframes = {
        tf: tf for tf in ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
    }
    has = {
        "fetchOHLCV": True,
        "fetchMarkOHLCV": True,
        "fetchIndexOHLCV": True,
        "fetchPremiumIndexOHLCV": True,
        "fetchTrades": True,
        "fetchOrderBook": True,
        "fetchTicker": True,
        "fetchFundingRateHistory": True,
        "fetchOpenInterestHistory": True,
        "historicalSnapshots": True,  # not ccxt: order books and tickers can be asked "as of" a past time
    }

    def __init__(
        self,
        seed: int = 0,
        symbols: Iterable[str] = (),
        calendar: str = TWENTY_FOUR_SEVEN,
        clock: Callable[[], datetime] | None = None,
    ):
        self.seed = int(seed)
        self.calendar = calendar
        self.clock = clock or clock_now  # the project's clock unless the caller pins its own
        self.symbols = tuple(symbols)
        self.markets: dict[str, dict[str, Any]] | None = None
        self._day = lru_cache(maxsize=64)(self._make_day)
        self._level = lru_cache(maxsize=4096)(self._block_levels)

    # --- ccxt surface -------------------------------------------------------------------------------------

    def milliseconds(self) -> int:
        return int(self.clock().timestamp() * 1000)

    @staticmethod
    def parse_timeframe(timeframe: str) -> int:
        return int(interval_to_timedelta(timeframe).total_seconds())

    def load_markets(self, reload: bool = False) -> dict[str, dict[str, Any]]:
        if self.markets is None or reload:
            markets = {}
            for symbol in self.symbols:
                spot = symbol.split(":")[0]
                quote = spot.partition("/")[2]
                for listed in (spot, f"{spot}:{quote}"):
                    markets[listed] = _market(listed, _model_for(listed, self.calendar))
            self.markets = markets
        return self.markets

    def market(self, symbol: str) -> dict[str, Any]:
        markets = self.load_markets()
        if symbol not in markets:
            raise ccxt.BadSymbol(f"synthetic does not have market symbol {symbol}")
        return markets[symbol]

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params=None,
    ) -> list[list[float]]:
        """Candles `[time, open, high, low, close, volume, quote_volume, trades]`; the last may be open."""
        self.market(symbol)
        limit = min(limit or 500, 1000)
        step = pd.Timedelta(interval_to_timedelta(timeframe))
        now = self._now()
        latest = since is None
        lo = self._latest_start(timeframe, limit, now) if latest else _ts(since)
        rows: list[list[float]] = []
        while (latest or len(rows) < limit) and lo <= now:
            # The latest candles in one pass (`_latest_start` bounds them); a page from `since` in windows.
            hi = now + step if latest else min(lo + step * (limit - len(rows) + 1), now + step)
            bars = expected_bars(self.calendar, timeframe, lo, hi)
            bars = bars[bars.left <= now]
            rows.extend(self._aggregate(symbol, bars, now))
            lo = hi
        return rows[-limit:] if latest else rows[:limit]

    def fetch_mark_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None):
        """Mark-price candles of a perpetual: its traded candles `_MARK_PREMIUM` higher, no volume."""
        return self._derived_ohlcv(symbol, timeframe, since, limit, lambda p: p * (1 + _MARK_PREMIUM))

    def fetch_index_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None):
        """Index-price candles of a perpetual: its traded candles `_INDEX_DISCOUNT` lower, no volume."""
        return self._derived_ohlcv(symbol, timeframe, since, limit, lambda p: p * (1 - _INDEX_DISCOUNT))

    def fetch_premium_index_ohlcv(
        self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None
    ):
        """Premium index candles (mark over index, minus one): constant, as the model's basis is."""
        premium = (1 + _MARK_PREMIUM) / (1 - _INDEX_DISCOUNT) - 1
        return self._derived_ohlcv(symbol, timeframe, since, limit, lambda _price: premium)

    def _derived_ohlcv(self, symbol, timeframe, since, limit, transform) -> list[list[float]]:
        if not self.market(symbol)["contract"]:
            raise ccxt.BadRequest(f"synthetic {symbol} is spot: it has no mark, index or premium index price")
        digits = _digits(_model_for(symbol, self.calendar).tick) + 2
        return [
            [row[0], *(round(float(transform(v)), digits) for v in row[1:5]), 0.0]
            for row in self.fetch_ohlcv(symbol, timeframe, since, limit)
        ]

    def fetch_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None, params=None
    ) -> list[dict[str, Any]]:
        """Public trades with `timestamp >= since` (oldest first) up to now, at most `limit`."""
        self.market(symbol)
        limit = min(limit or 1000, 1000)
        now_ms = self.milliseconds()
        until = (params or {}).get("until")
        if until is not None:
            now_ms = min(now_ms, int(until))
        if since is None:
            frame = self.trades_between(symbol, now_ms - 3_600_000, now_ms + 1)
            frame = frame.iloc[-limit:]
        else:
            frame = pd.DataFrame()
            lo = since
            while lo <= now_ms:
                hi = min((lo // DAY_MS + 1) * DAY_MS, now_ms + 1)
                part = self.trades_between(symbol, lo, hi)
                frame = part if frame.empty else pd.concat([frame, part])
                if len(frame) >= limit:
                    break
                lo = hi
            frame = frame.iloc[:limit]
        return [_trade_structure(symbol, row) for row in frame.itertuples(index=False)]

    def fetch_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict[str, Any]:
        """The book as of now, or as of `params['at']` (ms): the synthetic exchange has a past."""
        model = self._model(symbol)
        at = int((params or {}).get("at", self.milliseconds()))
        depth = limit or 100
        mid = self._price_at(symbol, at)
        rng = self._rng(model, _BOOK, at)
        half_spread = mid * (0.5 + 2.0 * rng.random()) * 1e-4
        best_bid = math.floor((mid - half_spread) / model.tick) * model.tick
        best_ask = max(math.ceil((mid + half_spread) / model.tick) * model.tick, best_bid + model.tick)
        gaps = model.tick * (1 + rng.poisson(3.0, size=(2, depth)))
        bid_prices = best_bid - np.concatenate([[0.0], np.cumsum(gaps[0])[:-1]])
        ask_prices = best_ask + np.concatenate([[0.0], np.cumsum(gaps[1])[:-1]])
        level_size = model.volume_day / MINUTES / 4
        growth = 1 + np.arange(depth) / 5
        amounts = (
            np.round(level_size * growth * rng.lognormal(0.0, 0.6, size=(2, depth)) / model.lot) * model.lot
        )
        amounts = np.maximum(amounts, model.lot)
        digits = _digits(model.tick)
        return {
            "symbol": symbol,
            "bids": [[round(p, digits), round(a, 8)] for p, a in zip(bid_prices, amounts[0], strict=True)],
            "asks": [[round(p, digits), round(a, 8)] for p, a in zip(ask_prices, amounts[1], strict=True)],
            "timestamp": at,
            "datetime": _iso(at),
            "nonce": None,
        }

    def fetch_ticker(self, symbol: str, params=None) -> dict[str, Any]:
        """24h rolling statistics as of now, or as of `params['at']` (ms)."""
        self.market(symbol)
        at = int((params or {}).get("at", self.milliseconds()))
        trades = self.trades_between(symbol, at - DAY_MS, at)
        book = self.fetch_order_book(symbol, 1, {"at": at})
        last = self._price_at(symbol, at)
        if trades.empty:
            open_, high, low, base_volume, quote_volume = last, last, last, 0.0, 0.0
        else:
            open_ = float(trades["price"].iloc[0])
            high = float(trades["price"].max())
            low = float(trades["price"].min())
            base_volume = float(trades["amount"].sum())
            quote_volume = float((trades["price"] * trades["amount"]).sum())
        change = last - open_
        return {
            "symbol": symbol,
            "timestamp": at,
            "datetime": _iso(at),
            "high": high,
            "low": low,
            "bid": book["bids"][0][0],
            "bidVolume": book["bids"][0][1],
            "ask": book["asks"][0][0],
            "askVolume": book["asks"][0][1],
            "vwap": quote_volume / base_volume if base_volume else None,
            "open": open_,
            "close": last,
            "last": last,
            "previousClose": None,
            "change": change,
            "percentage": change / open_ * 100 if open_ else None,
            "average": (open_ + last) / 2,
            "baseVolume": base_volume,
            "quoteVolume": quote_volume,
            "info": {},
        }

    def fetch_funding_rate_history(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params=None
    ) -> list[dict[str, Any]]:
        """Funding every 8 hours (00:00, 08:00, 16:00 UTC), a small positive rate with noise."""
        model = self._model(symbol)
        times = self._grid(_FUNDING_MS, since, min(limit or 100, 1000))
        rows = []
        for ms in times:
            rate = float(
                np.clip(1e-4 + 1.5e-4 * self._rng(model, _FUNDING, ms).standard_normal(), -3e-3, 3e-3)
            )
            rows.append(
                {
                    "symbol": symbol,
                    "fundingRate": round(rate, 8),
                    "timestamp": ms,
                    "datetime": _iso(ms),
                    "info": {},
                }
            )
        return rows

    def fetch_open_interest_history(
        self,
        symbol: str,
        timeframe: str = "1h",
        since: int | None = None,
        limit: int | None = None,
        params=None,
    ) -> list[dict[str, Any]]:
        """Open interest sampled every `timeframe`: slow cycles around twice the daily volume."""
        model = self._model(symbol)
        step_ms = self.parse_timeframe(timeframe) * 1000
        rows = []
        for ms in self._grid(step_ms, since, min(limit or 30, 500)):
            days = ms / DAY_MS
            noise = self._rng(model, _OPEN_INTEREST, ms).standard_normal()
            cycle = 0.2 * math.sin(2 * math.pi * days / 9.3) + 0.1 * math.sin(2 * math.pi * days / 2.1)
            amount = round(2 * model.volume_day * math.exp(cycle + 0.02 * noise), 3)
            rows.append(
                {
                    "symbol": symbol,
                    "openInterestAmount": amount,
                    "openInterestValue": round(amount * self._price_at(symbol, ms), 2),
                    "timestamp": ms,
                    "datetime": _iso(ms),
                    "info": {},
                }
            )
        return rows

    # --- vectorised helpers (also used by tests and the benchmark) -----------------------------------------

    def _latest_start(self, timeframe: str, limit: int, now: pd.Timestamp) -> pd.Timestamp:
        """Where the latest `limit` candles begin: `limit` steps back on 24/7; on a calendar, far enough back
        to hold `limit` session candles (past weekends and holidays), as an exchange answers without `since`."""
        step = pd.Timedelta(interval_to_timedelta(timeframe))
        span = step * limit
        while True:
            lo = max(floor_time(now, timeframe) - span, ORIGIN)
            if self.calendar == TWENTY_FOUR_SEVEN or lo == ORIGIN:
                return lo
            if len(expected_bars(self.calendar, timeframe, lo, now + pd.Timedelta(1))) >= limit:
                return lo
            span *= 2

    def trades_between(self, symbol: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Trades with `start_ms <= timestamp < end_ms` (and not after now), oldest first."""
        model = self._model(symbol)
        end_ms = min(end_ms, self.milliseconds() + 1)
        parts = []
        for day in range(max(start_ms, 0) // DAY_MS, (end_ms - 1) // DAY_MS + 1):
            if end_ms <= start_ms or day < self._origin_day():
                continue
            data = self._day(model, day - self._origin_day())
            stamps = data.trade_ms + day * DAY_MS
            keep = (stamps >= start_ms) & (stamps < end_ms) & self._in_session(stamps)
            if not keep.any():
                continue
            index = np.flatnonzero(keep)
            parts.append(
                pd.DataFrame(
                    {
                        "id": (day - self._origin_day()) * 10_000_000 + index,
                        "timestamp": stamps[index],
                        "price": data.trade_price[index],
                        "amount": data.trade_amount[index],
                        "buy": data.trade_buy[index],
                    }
                )
            )
        if not parts:
            return pd.DataFrame({"id": [], "timestamp": [], "price": [], "amount": [], "buy": []})
        return pd.concat(parts, ignore_index=True)

    # --- model ---------------------------------------------------------------------------------------------

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp(self.milliseconds(), unit="ms", tz="UTC")

    @staticmethod
    def _origin_day() -> int:
        return int(ORIGIN.value // 1_000_000 // DAY_MS)

    def _model(self, symbol: str | None) -> _Model:
        if symbol is None:
            raise ccxt.ArgumentsRequired("synthetic needs a symbol")
        self.market(symbol)
        return _model_for(symbol, self.calendar)

    def _rng(self, model: _Model, stream: int, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, model.key, stream, *keys]))

    def _block_levels(self, model: _Model, block: int) -> tuple[float, np.ndarray]:
        """Log-price at the open of each day of `block`, relative to the origin: a GBM with daily steps."""
        start = 0.0 if block == 0 else float(self._level(model, block - 1)[1][-1])
        draws = self._rng(model, _DAILY, block).standard_normal(_BLOCK + 1)
        steps = -0.5 * model.sigma_day**2 + model.sigma_day * draws
        levels = start + np.concatenate([[0.0], np.cumsum(steps)])
        return start, levels[1:]  # levels[i] = level at the open of day (block * BLOCK + i + 1)

    def _day_open_log(self, model: _Model, day: int) -> float:
        if day < 0:
            raise ValueError(f"synthetic data starts at {ORIGIN.date()}")
        if day == 0:
            return math.log(model.price0)
        block, offset = divmod(day - 1, _BLOCK)
        return math.log(model.price0) + float(self._level(model, block)[1][offset])

    def _make_day(self, model: _Model, day: int) -> _Day:
        log_open = self._day_open_log(model, day)
        log_next = self._day_open_log(model, day + 1)
        rng = self._rng(model, _MINUTES, day)
        # Busier, more volatile hours in the afternoon UTC (Europe/US overlap); mean weight is 1.
        hours = (np.arange(MINUTES) + 0.5) / 60
        weight = 1 + 0.5 * np.sin(2 * math.pi * (hours - 8) / 24)
        var = model.sigma_day**2 / MINUTES * weight
        walk = np.cumsum(np.sqrt(var) * rng.standard_normal(MINUTES))
        cum_var = np.cumsum(var) / var.sum()
        path = log_open + walk - cum_var * (walk[-1] - (log_next - log_open))  # Brownian bridge to next open
        log_close = path
        log_open_m = np.concatenate([[log_open], path[:-1]])
        move = log_close - log_open_m
        # Extremes of a Brownian bridge over the minute: P(max > m) = exp(-2 m (m - b) / v).
        u_hi, u_lo = rng.random(MINUTES), rng.random(MINUTES)
        log_high = log_open_m + 0.5 * (move + np.sqrt(move**2 - 2 * var * np.log1p(-u_hi)))
        log_low = log_open_m + 0.5 * (move - np.sqrt(move**2 - 2 * var * np.log1p(-u_lo)))
        tick = model.tick
        o, h, lo, c = (np.round(np.exp(x) / tick) * tick for x in (log_open_m, log_high, log_low, log_close))
        # Volume: seasonal, higher on large moves, log-normal noise.
        surprise = np.abs(move) / np.sqrt(var)
        volume = (
            model.volume_day / MINUTES * weight * (0.6 + 0.4 * surprise) * rng.lognormal(-0.125, 0.5, MINUTES)
        )
        counts = 4 + rng.poisson(1.5 * weight)
        return self._trades_for(model, day, o, h, lo, c, volume, counts)

    def _trades_for(self, model, day, o, h, lo, c, volume, counts) -> _Day:
        rng = self._rng(model, _TRADES, day)
        total = int(counts.sum())
        minute = np.repeat(np.arange(MINUTES), counts)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        position = np.arange(total) - np.repeat(first, counts)
        n = counts[minute]
        offsets = np.sort(minute * MINUTE_MS + rng.integers(0, MINUTE_MS, total))
        price = lo[minute] + rng.random(total) * (h[minute] - lo[minute])
        price = np.round(price / model.tick) * model.tick
        high_at = 1 + (rng.random(MINUTES) * (counts - 2)).astype(int)
        low_at = 1 + (rng.random(MINUTES) * (counts - 3)).astype(int)
        low_at = np.where(low_at >= high_at, low_at + 1, low_at)
        price = np.where(position == 0, o[minute], price)
        price = np.where(position == n - 1, c[minute], price)
        price = np.where(position == high_at[minute], h[minute], price)
        price = np.where(position == low_at[minute], lo[minute], price)
        share = rng.gamma(1.0, size=total)
        share /= np.bincount(minute, share, MINUTES)[minute]
        amount = np.maximum(np.round(share * volume[minute] / model.lot) * model.lot, model.lot)
        step = np.diff(price, prepend=o[0])
        buy = np.where(step == 0, rng.random(total) < 0.5, step > 0)
        digits = _digits(model.tick)
        price = np.round(price, digits)
        amount = np.round(amount, 8)
        return _Day(
            open=np.round(o, digits),
            high=np.round(h, digits),
            low=np.round(lo, digits),
            close=np.round(c, digits),
            volume=np.bincount(minute, amount, MINUTES),
            quote_volume=np.bincount(minute, price * amount, MINUTES),
            trades=counts,
            trade_ms=offsets,
            trade_price=price,
            trade_amount=amount,
            trade_buy=buy,
        )

    def _minutes(self, symbol: str, first_day: int, last_day: int) -> dict[str, np.ndarray]:
        model = self._model(symbol)
        days = [self._day(model, d) for d in range(first_day, last_day + 1)]
        return {
            name: np.concatenate([getattr(d, name) for d in days])
            for name in ("open", "high", "low", "close", "volume", "quote_volume", "trades")
        }

    def _aggregate(self, symbol: str, bars: pd.IntervalIndex, now: pd.Timestamp) -> list[list[float]]:
        starts, ends = self._trading_span(bars)
        opened = starts <= now.value
        starts, ends, labels = starts[opened], ends[opened], bars.left.as_unit("ms").asi8[opened]
        if len(starts) == 0:
            return []
        origin_ns = ORIGIN.value
        minute_ns = MINUTE_MS * 1_000_000
        lefts = (starts - origin_ns) // minute_ns
        now_minute = (now.value - origin_ns) // minute_ns + 1
        rights = np.minimum((ends - origin_ns) // minute_ns, now_minute)
        if lefts[0] < 0:
            raise ValueError(f"synthetic data starts at {ORIGIN.date()}")
        first_day, last_day = int(lefts[0] // MINUTES), int((rights[-1] - 1) // MINUTES)
        data = self._minutes(symbol, first_day, last_day)
        base = first_day * MINUTES
        lo, hi = lefts - base, rights - base
        bounds = np.column_stack([lo, hi]).ravel()
        pad = {k: np.append(v, v[-1:]) for k, v in data.items()}  # reduceat needs indices < len
        high = np.maximum.reduceat(pad["high"], bounds)[::2]
        low = np.minimum.reduceat(pad["low"], bounds)[::2]
        volume = np.add.reduceat(pad["volume"], bounds)[::2]
        quote = np.add.reduceat(pad["quote_volume"], bounds)[::2]
        trades = np.add.reduceat(pad["trades"], bounds)[::2]
        opens, closes = data["open"][lo], data["close"][hi - 1]
        return [
            [int(t), float(op), float(hg), float(lw), float(cl), round(float(v), 8), float(q), int(n)]
            for t, op, hg, lw, cl, v, q, n in zip(
                labels, opens, high, low, closes, volume, quote, trades, strict=True
            )
        ]

    def _trading_span(self, bars: pd.IntervalIndex) -> tuple[np.ndarray, np.ndarray]:
        """Nanosecond [start, end) each candle aggregates: an equity candle only its session's part."""
        return trading_spans(self.calendar, bars)

    def _price_at(self, symbol: str, at_ms: int) -> float:
        """Last trade price at or before `at_ms` (the day's open before its first trade); outside a session
        of an equity calendar, the last price of the session before (the path goes on underneath, but no
        trade happens there)."""
        model = self._model(symbol)
        last = last_trading_instant(self.calendar, _ts(at_ms))
        if last is not None and last < _ts(at_ms):
            at_ms = int(last.value // 1_000_000) - 1  # the close is exclusive: the last trade before it
        day = at_ms // DAY_MS - self._origin_day()
        data = self._day(model, day)
        index = int(np.searchsorted(data.trade_ms, at_ms - (at_ms // DAY_MS) * DAY_MS, side="right")) - 1
        return float(data.trade_price[index]) if index >= 0 else float(data.open[0])

    def _in_session(self, stamps: np.ndarray) -> np.ndarray:
        if self.calendar == TWENTY_FOUR_SEVEN or len(stamps) == 0:
            return np.ones(len(stamps), dtype=bool)
        start = pd.Timestamp(int(stamps.min()), unit="ms", tz="UTC").floor("1D")
        end = pd.Timestamp(int(stamps.max()), unit="ms", tz="UTC").ceil("1D") + pd.Timedelta(days=1)
        minutes = expected_bars(self.calendar, "1m", start, end)
        starts = minutes.left.as_unit("ms").asi8
        if len(starts) == 0:  # no session minute in the span (a weekend, a holiday)
            return np.zeros(len(stamps), dtype=bool)
        index = np.searchsorted(starts, stamps, side="right") - 1
        # The session minute each stamp falls in, if any; indices are clipped before indexing because
        # np.where evaluates both branches.
        return (index >= 0) & (stamps < starts[np.maximum(index, 0)] + MINUTE_MS)

    def _grid(self, step_ms: int, since: int | None, limit: int) -> list[int]:
        now_ms = self.milliseconds()
        # The latest `limit` points, or the first `limit` at or after `since` (rounded up to the grid).
        first = (now_ms // step_ms - limit + 1) * step_ms if since is None else -(-since // step_ms) * step_ms
        return [t for t in range(first, first + limit * step_ms, step_ms) if t <= now_ms]


@lru_cache(maxsize=256)
def _model_for(symbol: str, calendar: str) -> _Model:
    base = symbol.split("/")[0]
    key = zlib.crc32(base.encode())
    price0 = _KNOWN_PRICES.get(base, 10 ** (1 + (key % 300) / 100))
    annual_vol = 0.6 if calendar == TWENTY_FOUR_SEVEN else 0.2
    tick = 0.01 if price0 >= 1 else 10.0 ** (math.floor(math.log10(price0)) - 4)
    return _Model(
        key=key,
        price0=price0,
        sigma_day=annual_vol / math.sqrt(365),
        volume_day=round(2e8 / price0, 3),  # about 200 M quote units a day
        tick=tick,
        lot=10.0 ** (math.floor(math.log10(2e8 / price0 / MINUTES / 20)) - 2),
    )


def _market(symbol: str, model: _Model) -> dict[str, Any]:
    """A ccxt market structure: spot `BASE/QUOTE`, or the linear perpetual `BASE/QUOTE:QUOTE`."""
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    swap = bool(settle)
    return {
        "id": symbol.replace("/", "").replace(":", "_"),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle or None,
        "type": "swap" if swap else "spot",
        "spot": not swap,
        "margin": False,
        "swap": swap,
        "future": False,
        "option": False,
        "contract": swap,
        "linear": True if swap else None,
        "inverse": False if swap else None,
        "contractSize": 1.0 if swap else None,
        "expiry": None,
        "strike": None,
        "optionType": None,
        "active": True,
        "created": int(ORIGIN.value // 1_000_000),
        "precision": {"price": model.tick, "amount": model.lot},
        "limits": {"amount": {"min": model.lot, "max": None}, "price": {"min": model.tick, "max": None}},
        "info": {},
    }


def _trade_structure(symbol: str, row) -> dict[str, Any]:
    price, amount = float(row.price), float(row.amount)
    return {
        "info": {},
        "id": str(int(row.id)),
        "timestamp": int(row.timestamp),
        "datetime": _iso(int(row.timestamp)),
        "symbol": symbol,
        "order": None,
        "type": None,
        "side": "buy" if row.buy else "sell",
        "takerOrMaker": None,
        "price": price,
        "amount": amount,
        "cost": price * amount,
        "fee": None,
    }


def _digits(tick: float) -> int:
    return max(0, -math.floor(math.log10(tick) + 1e-9))


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def _iso(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")
