"""Pulling market data through ccxt (or the synthetic exchange, which speaks the same unified API).

What ccxt does not do for us, and this module does:
- paginate a time window with `since`/`limit` to its end, surviving exchange gaps (an empty page inside the
  window moves on by one page span instead of stopping or asking the same page forever);
- keep closed candles only: a candle whose close is after "now" is still moving and is never returned;
- back off on rate limiting (HTTP 429/418 → `DDoSProtection`/`RateLimitExceeded`) and on transient network
  errors with exponential delay plus jitter, honouring `Retry-After`, up to a maximum — on top of ccxt's own
  `enableRateLimit` throttle, which is always on;
- turn ccxt structures into frames shaped like the warehouse tables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt
import numpy as np
import pandas as pd

from market_warehouse.resources import clock
from market_warehouse.resources.exchanges.calendars import floor_time, utc
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from market_warehouse.resources.exchanges.universe import ExchangeConfig
from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.retry import Backoff, classify, is_rate_limited

log = logging.getLogger(__name__)

OHLCV_COLUMNS = ["time", "open", "high", "low", "close", "volume", "quote_volume", "trades_count"]
# Candle price kind -> (ccxt unified method, its `exchange.has` key).
PRICE_METHODS = {
    "trade": ("fetch_ohlcv", "fetchOHLCV"),
    "mark": ("fetch_mark_ohlcv", "fetchMarkOHLCV"),
    "index": ("fetch_index_ohlcv", "fetchIndexOHLCV"),
    "premium_index": ("fetch_premium_index_ohlcv", "fetchPremiumIndexOHLCV"),
}


@dataclass
class PullStats:
    """What talking to the exchange cost: requests, pages without data, retries and time slept."""

    requests: int = 0
    empty_pages: int = 0
    rate_limited: int = 0
    network_retries: int = 0
    slept_seconds: float = 0.0

    def add(self, other: PullStats) -> None:
        self.requests += other.requests
        self.empty_pages += other.empty_pages
        self.rate_limited += other.rate_limited
        self.network_retries += other.network_retries
        self.slept_seconds += other.slept_seconds

    def as_metadata(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "empty_pages": self.empty_pages,
            "rate_limited": self.rate_limited,
            "network_retries": self.network_retries,
            "backoff_seconds": round(self.slept_seconds, 3),
        }


@dataclass
class Pulled:
    """A pulled window: the rows, and up to when the exchange has answered for good (`answered_until`).

    `[start, answered_until)` is what goes into the coverage ledger: asked, answered, settled. Rows may reach
    past it (closed candles younger than the settle time are kept, but their range is asked again later).
    """

    frame: pd.DataFrame
    start: pd.Timestamp
    answered_until: pd.Timestamp
    stats: PullStats = field(default_factory=PullStats)


def build_exchange(
    config: ExchangeConfig,
    *,
    api_base_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Any:
    """A ccxt exchange (or the synthetic one) for `config`, throttled by ccxt's own rate limiter.

    `api_base_url` replaces scheme and host of every API URL of the exchange (keeping the paths), which is
    how tests point real ccxt code at a local server; `config.urls` overrides single API URL keys.
    """
    if config.is_synthetic:
        return SyntheticExchange(
            seed=config.seed,
            symbols=list(config.symbols) + [m.symbol for m in config.metrics],
            calendar=config.calendar,
            clock=clock,
        )
    params: dict[str, Any] = {"enableRateLimit": True, "options": dict(config.options)}
    if config.rate_limit_ms is not None:
        params["rateLimit"] = config.rate_limit_ms
    exchange = getattr(ccxt, config.driver)(params)
    api = exchange.urls.get("api")
    if api_base_url:
        api = rebase_urls(api, api_base_url)
    if config.urls:
        api = {**api, **config.urls} if isinstance(api, dict) else dict(config.urls)
    exchange.urls["api"] = api
    return exchange


def rebase_urls(api: Any, base_url: str, scheme: str = "http") -> Any:
    """Swap scheme+host of every URL in ccxt's (possibly nested) `urls['api']` for `base_url`'s; only URLs
    whose scheme starts with `scheme` ('http': REST, 'ws': the websocket URLs of ccxt.pro)."""
    base = urlsplit(base_url)
    if isinstance(api, dict):
        return {key: rebase_urls(value, base_url, scheme) for key, value in api.items()}
    if isinstance(api, str) and api.startswith(scheme):
        parts = urlsplit(api)
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))
    return api


def call(exchange: Any, method: str, *args: Any, backoff: Backoff, stats: PullStats, **kwargs: Any) -> Any:
    """Call `exchange.<method>`, retrying per `backoff` only what can pass on another try.

    Transient means what `resources.retry.classify` says (for an exchange: the ccxt `NetworkError` family,
    rate limits included); anything else (`BadSymbol`, `NotSupported`, a bug) is raised at once.
    """
    attempt = 0
    while True:
        stats.requests += 1
        try:
            return getattr(exchange, method)(*args, **kwargs)
        except Exception as exc:
            verdict = classify(exc)
            if not verdict.transient or attempt >= backoff.max_retries:
                raise
            limited = is_rate_limited(exc)
            delay = backoff.delay(attempt, _retry_after(exchange) if limited else None)
            if limited:
                stats.rate_limited += 1
            else:
                stats.network_retries += 1
            log.warning(
                "%s.%s: %s (%s); retry %d/%d in %.2fs",
                getattr(exchange, "id", "exchange"),
                method,
                type(exc).__name__,
                verdict.reason,
                attempt + 1,
                backoff.max_retries,
                delay,
            )
            backoff.sleep(delay)
            stats.slept_seconds += delay
            attempt += 1


def _retry_after(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _now(now: datetime | None) -> pd.Timestamp:
    return utc(now if now is not None else clock.now())


def paginate_by_time(
    fetch_page: Callable[[int, int], list],
    timestamp_of: Callable[[Any], int],
    start: pd.Timestamp,
    end: pd.Timestamp,
    step_ms: int,
    limit: int,
    stats: PullStats,
) -> list:
    """Items with `start <= timestamp < end`, asking pages `since=…` until the window is exhausted.

    A non-empty page moves `since` past its last item; an empty page (an exchange gap, or an exchange that
    only answers `[since, since + limit × step)`) moves it on by one page span, so every request makes
    progress and the number of requests is bounded by the window length.
    """
    start_ms, end_ms = _ms(start), _ms(end)
    since = start_ms
    items: dict[int, Any] = {}
    while since < end_ms:
        # Never ask for more than the window still needs (smaller answers, lighter on rate limits).
        page_limit = max(1, min(limit, -(-(end_ms - since) // step_ms)))
        page = fetch_page(since, page_limit)
        stamps = [timestamp_of(item) for item in page]
        fresh = [(t, item) for t, item in zip(stamps, page, strict=True) if t >= since]
        if not fresh:
            stats.empty_pages += 1
            since += page_limit * step_ms
            continue
        for t, item in fresh:
            if t < end_ms:
                items[t] = item
        since = max(max(t for t, _ in fresh) + step_ms, since + step_ms)
    return [items[t] for t in sorted(items)]


def fetch_ohlcv_range(
    exchange: Any,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    *,
    limit: int = 1000,
    now: datetime | None = None,
    settle: str = "2m",
    backoff: Backoff | None = None,
    price: str = "trade",
) -> Pulled:
    """Closed candles of `symbol` with open time in `[start, end)`, paging through the window.

    Candles whose close is after `now` are dropped (still open). `answered_until` stops `settle` before now
    so a candle the exchange publishes a little late is asked again rather than recorded as missing.
    `price` picks the candle kind: traded prices, or the mark / index / premium index price of a
    derivative through ccxt's own method for it (see `supports_price`).
    """
    method = PRICE_METHODS[price][0]
    backoff = backoff or Backoff()
    stats = PullStats()
    step = pd.Timedelta(interval_to_timedelta(timeframe))
    now_ts = _now(now)
    start_ts = utc(start)
    closed_end = min(utc(end), floor_time(now_ts, timeframe))
    rows = paginate_by_time(
        lambda since, lim: call(
            exchange, method, symbol, timeframe, since=since, limit=lim, backoff=backoff, stats=stats
        ),
        lambda row: int(row[0]),
        start_ts,
        closed_end,
        int(step.total_seconds() * 1000),
        limit,
        stats,
    )
    frame = _ohlcv_rows_to_frame(rows)
    if not frame.empty:
        frame = frame[frame["time"] + step <= now_ts]
    settled = floor_time(now_ts - pd.Timedelta(interval_to_timedelta(settle)), timeframe)
    answered = max(start_ts, min(closed_end, settled))
    return Pulled(frame.reset_index(drop=True), start_ts, answered, stats)


def _ohlcv_rows_to_frame(rows: list[list]) -> pd.DataFrame:
    """ccxt OHLCV rows (6 columns; the synthetic exchange adds quote volume and trade count) to a frame."""
    width = len(OHLCV_COLUMNS)
    padded = [list(row[:width]) + [None] * (width - len(row[:width])) for row in rows]
    frame = pd.DataFrame(padded, columns=OHLCV_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"].astype("int64"), unit="ms", utc=True)
    for column in ("open", "high", "low", "close", "volume", "quote_volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["trades_count"] = pd.to_numeric(frame["trades_count"], errors="coerce").astype("Int64")
    return frame


def ohlcv_frame(
    pulled: Pulled, exchange: str, symbol: str, interval: str, source: str, price: str = "trade"
) -> pd.DataFrame:
    """Rows for the `ohlcv` table, keyed by their price kind; `vwap` is derived where the quote volume is
    known (a mark or index candle has no traded volume: its volume column is what the exchange sends)."""
    frame = pulled.frame.copy()
    frame.insert(0, "exchange", exchange)
    frame.insert(1, "symbol", symbol)
    frame.insert(2, "interval", interval)
    frame.insert(3, "price", price)
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = frame["quote_volume"] / frame["volume"]
    frame["vwap"] = vwap.where(frame["volume"] > 0)
    frame["source"] = source
    return frame


def fetch_trades_range(
    exchange: Any,
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    limit: int = 1000,
    now: datetime | None = None,
    settle: str = "2m",
    window: str = "1h",
    max_pages: int = 10_000,
    backoff: Backoff | None = None,
) -> Pulled:
    """Public trades with time in `[start, min(end, now))`, window by window, de-duplicated by id.

    Each request names its window's end (ccxt's unified `until`), because exchanges answer `since` with
    at most a window (Binance: one hour) and a quiet window must not read as "no more trades". Inside a
    window, a full page continues from its last trade's own millisecond (several trades can share it, so
    the page boundary may fall between them); a short page closes the window.
    """
    backoff = backoff or Backoff()
    stats = PullStats()
    now_ts = _now(now)
    start_ms, end_ms = _ms(utc(start)), _ms(min(utc(end), now_ts))
    span_ms = int(interval_to_timedelta(window).total_seconds() * 1000)
    trades: dict[str, dict] = {}
    reached = start_ms
    pages = 0
    while reached < end_ms and pages < max_pages:
        window_end = min(reached + span_ms, end_ms)
        cursor = reached
        while pages < max_pages:
            pages += 1
            page = call(
                exchange,
                "fetch_trades",
                symbol,
                since=cursor,
                limit=limit,
                params={"until": window_end - 1},
                backoff=backoff,
                stats=stats,
            )
            new = [t for t in page if cursor <= t["timestamp"] < window_end and _trade_key(t) not in trades]
            for trade in new:
                trades[_trade_key(trade)] = trade
            if not page:
                stats.empty_pages += 1
            if len(page) < limit or not new:
                reached = window_end
                break
            cursor = max(t["timestamp"] for t in new)
            reached = cursor
    settled = _ms(now_ts - pd.Timedelta(interval_to_timedelta(settle)))
    answered = pd.Timestamp(max(start_ms, min(reached, settled)), unit="ms", tz="UTC")
    return Pulled(_trades_frame(list(trades.values())), utc(start), answered, stats)


def _trade_key(trade: Mapping[str, Any]) -> str:
    return str(trade.get("id") or f"{trade['timestamp']}:{trade.get('price')}:{trade.get('amount')}")


def _trades_frame(trades: list[dict]) -> pd.DataFrame:
    columns = ["trade_id", "time", "price", "amount", "cost", "side", "is_buyer_maker"]
    if not trades:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns}).assign(
            time=pd.Series(dtype="datetime64[ns, UTC]")
        )
    frame = pd.DataFrame(
        {
            "trade_id": [_trade_key(t) for t in trades],
            "time": pd.to_datetime([int(t["timestamp"]) for t in trades], unit="ms", utc=True),
            "price": [t.get("price") for t in trades],
            "amount": [t.get("amount") for t in trades],
            "cost": [t.get("cost") for t in trades],
            "side": [t.get("side") for t in trades],
        }
    )
    # The buyer is the maker exactly when the aggressor (taker) sold.
    frame["is_buyer_maker"] = frame["side"].map({"sell": True, "buy": False})
    return frame.sort_values(["time", "trade_id"]).reset_index(drop=True)


def trades_frame(pulled: Pulled, exchange: str, symbol: str) -> pd.DataFrame:
    frame = pulled.frame.copy()
    frame.insert(0, "exchange", exchange)
    frame.insert(1, "symbol", symbol)
    return frame


def supports_price(exchange: Any, price: str) -> bool:
    """Whether the exchange serves candles of this price kind (ccxt's `has` says so)."""
    return bool(getattr(exchange, "has", {}).get(PRICE_METHODS[price][1]))


def supports_history(exchange: Any) -> bool:
    """Whether order books and tickers can be asked as of a past time (only the synthetic exchange)."""
    return bool(getattr(exchange, "has", {}).get("historicalSnapshots"))


def fetch_order_book_row(
    exchange: Any,
    name: str,
    symbol: str,
    depth: int,
    *,
    at: datetime | None = None,
    now: datetime | None = None,
    backoff: Backoff | None = None,
    stats: PullStats | None = None,
) -> dict[str, Any]:
    """One `orderbook_snapshots` row: top-`depth` levels, best prices, spread, and depth on each side."""
    stats = stats if stats is not None else PullStats()
    params = {"at": _ms(utc(at))} if at is not None else {}
    book = call(
        exchange, "fetch_order_book", symbol, depth, params, backoff=backoff or Backoff(), stats=stats
    )
    return order_book_row(book, name, symbol, depth, _snapshot_time(book.get("timestamp"), at, now))


def order_book_row(book: Mapping[str, Any], name: str, symbol: str, depth: int, time_: Any) -> dict[str, Any]:
    """A ccxt order book (fetched, or kept live by ccxt.pro) as one `orderbook_snapshots` row at `time_`."""
    bids = [[float(p), float(a)] for p, a, *_ in book.get("bids", [])[:depth]]
    asks = [[float(p), float(a)] for p, a, *_ in book.get("asks", [])[:depth]]
    best_bid = bids[0][0] if bids else None
    best_ask = asks[0][0] if asks else None
    mid = (best_bid + best_ask) / 2 if bids and asks else None
    spread = best_ask - best_bid if bids and asks else None
    return {
        "exchange": name,
        "symbol": symbol,
        "time": time_,
        "best_bid": best_bid,
        "best_ask": best_ask,
        "mid_price": mid,
        "spread": spread,
        "spread_percent": spread / mid * 100 if mid else None,
        "bid_depth": float(sum(a for _, a in bids)),
        "ask_depth": float(sum(a for _, a in asks)),
        "depth_levels": max(len(bids), len(asks)),
        "bids": bids,
        "asks": asks,
    }


def fetch_ticker_row(
    exchange: Any,
    name: str,
    symbol: str,
    *,
    at: datetime | None = None,
    now: datetime | None = None,
    backoff: Backoff | None = None,
    stats: PullStats | None = None,
) -> dict[str, Any]:
    """One `market_metrics` row (interval '24h') from a ticker: 24h prices and volumes, spread, volatility.

    `volatility` is Parkinson's range estimator over the 24h high/low, σ = ln(H/L) / √(4 ln 2), per day.
    """
    stats = stats if stats is not None else PullStats()
    params = {"at": _ms(utc(at))} if at is not None else {}
    ticker = call(exchange, "fetch_ticker", symbol, params, backoff=backoff or Backoff(), stats=stats)
    return ticker_row(ticker, name, symbol, _snapshot_time(ticker.get("timestamp"), at, now))


def ticker_row(ticker: Mapping[str, Any], name: str, symbol: str, time_: Any) -> dict[str, Any]:
    """A ccxt ticker (fetched, or streamed by ccxt.pro) as one `market_metrics` row (interval '24h')."""
    high, low = ticker.get("high"), ticker.get("low")
    bid, ask = ticker.get("bid"), ticker.get("ask")
    volatility = (
        float(np.log(high / low) / np.sqrt(4 * np.log(2))) if high and low and high >= low > 0 else None
    )
    mid = (bid + ask) / 2 if bid and ask else None
    return {
        "exchange": name,
        "symbol": symbol,
        "interval": "24h",
        "time": time_,
        "last_price": ticker.get("last"),
        "open_24h": ticker.get("open"),
        "high_24h": high,
        "low_24h": low,
        "volume_24h": ticker.get("baseVolume"),
        "quote_volume_24h": ticker.get("quoteVolume"),
        "price_change_24h": ticker.get("change"),
        "price_change_percent_24h": ticker.get("percentage"),
        "bid": bid,
        "ask": ask,
        "volatility": volatility,
        "avg_spread_percent": (ask - bid) / mid * 100 if mid else None,
    }


def fetch_funding_range(
    exchange: Any,
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    limit: int = 1000,
    now: datetime | None = None,
    settle: str = "2m",
    backoff: Backoff | None = None,
) -> Pulled:
    """Funding events of a perpetual in `[start, end)`: time, rate, and mark/index price when the exchange
    gives them (ccxt's unified field, else the wire's `markPrice` / `indexPrice` in `info`).

    Pages step by the shortest funding period known (1h), so an empty page never jumps past events; the
    spacing of the events themselves is measured afterwards (`observed_intervals`), never assumed.
    """
    columns = {"rate": "fundingRate", "mark_price": "markPrice", "index_price": "indexPrice"}
    return _history_range(
        exchange, "fetch_funding_rate_history", (symbol,), columns, start, end, _FUNDING_STEP_MS, limit,
        now, settle, backoff,
    )  # fmt: skip


def fetch_open_interest_range(
    exchange: Any,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    *,
    limit: int = 500,
    now: datetime | None = None,
    settle: str = "2m",
    backoff: Backoff | None = None,
) -> Pulled:
    """Open interest of a derivative sampled every `interval` in `[start, end)`: amount (contracts or base
    units) and value (quote/settle currency), as ccxt's `fetch_open_interest_history` gives them."""
    step_ms = int(interval_to_timedelta(interval).total_seconds() * 1000)
    columns = {"amount": "openInterestAmount", "value": "openInterestValue"}
    return _history_range(
        exchange, "fetch_open_interest_history", (symbol, interval), columns, start, end, step_ms, limit,
        now, settle, backoff,
    )  # fmt: skip


def _history_range(
    exchange: Any,
    method: str,
    args: tuple,
    columns: Mapping[str, str],
    start: datetime,
    end: datetime,
    step_ms: int,
    limit: int,
    now: datetime | None,
    settle: str,
    backoff: Backoff | None,
) -> Pulled:
    """A time-stamped ccxt history (`method(*args, since=, limit=)`) in `[start, end)` paged by time, as a
    frame of `time` and `columns` (frame column -> ccxt field, or the exchange's own field in `info`)."""
    backoff = backoff or Backoff()
    stats = PullStats()
    now_ts = _now(now)
    points = paginate_by_time(
        lambda since, lim: call(
            exchange, method, *args, since=since, limit=lim, backoff=backoff, stats=stats
        ),
        lambda p: int(p["timestamp"]),
        utc(start),
        min(utc(end), now_ts + pd.Timedelta(milliseconds=1)),
        step_ms,
        limit,
        stats,
    )
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([int(p["timestamp"]) for p in points], unit="ms", utc=True),
            **{name: _numbers(_field(p, key) for p in points) for name, key in columns.items()},
        }
    )
    return Pulled(frame, utc(start), _answered(start, end, now_ts, settle), stats)


_FUNDING_STEP_MS = 3_600_000  # the shortest funding period exchanges use: an empty page moves on by this much


def _field(point: Mapping[str, Any], key: str) -> Any:
    """A unified field of a ccxt structure, or the exchange's own one in `info` (Binance's `markPrice`)."""
    value = point.get(key)
    return value if value is not None else (point.get("info") or {}).get(key)


def _numbers(values: Any) -> pd.Series:
    return pd.to_numeric(pd.Series(list(values), dtype="object")).astype("float64")


def _answered(start: datetime, end: datetime, now_ts: pd.Timestamp, settle: str) -> pd.Timestamp:
    """Up to when a time-stamped series (funding, open interest) counts as answered: `settle` before now."""
    return max(utc(start), min(utc(end), now_ts - pd.Timedelta(interval_to_timedelta(settle))))


def observed_intervals(times: pd.Series, previous: pd.Timestamp | None = None) -> pd.Series:
    """The spacing of each funding time from the one before, as an interval ('8h', '4h', '1h', '30m'), the
    first from `previous` (the last stored one) when known, else None.

    Exchanges stamp funding a few milliseconds late (Binance: 08:00:00.004), so the spacing is rounded to
    the minute; the schedule itself is never assumed.
    """
    stamps = pd.Series(pd.to_datetime(times, utc=True)).reset_index(drop=True)
    before = stamps.shift(1)
    if previous is not None and len(stamps):
        before.iloc[0] = utc(previous)
    minutes = ((stamps - before).dt.total_seconds() / 60).round()
    names = [None if pd.isna(m) or m <= 0 else _interval_name(int(m)) for m in minutes]
    return pd.Series(names, index=stamps.index, dtype="object")


def _interval_name(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _snapshot_time(stamp: int | None, at: datetime | None, now: datetime | None) -> pd.Timestamp:
    """The exchange's own timestamp when it sends one (Binance's spot depth does not), else when asked."""
    if stamp:
        return pd.Timestamp(int(stamp), unit="ms", tz="UTC")
    return utc(at) if at is not None else _now(now)


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)
