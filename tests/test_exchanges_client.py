"""ccxt pulls against a local Binance serving recorded responses: the real ccxt request and parsing code runs.

The recorded 1h klines of BTCUSDT (tests/fixtures/exchanges/binance) run from 2024-03-01 00:00 to
2024-03-03 10:00 UTC, with no candles 2024-03-02 05:00-09:59 (an exchange gap), and were recorded at
10:30 — so the 10:00 candle is still open.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import ccxt
import pandas as pd
import pytest

from market_warehouse.resources.exchanges.client import (
    Backoff,
    build_exchange,
    fetch_funding_range,
    fetch_ohlcv_range,
    fetch_open_interest_range,
    fetch_order_book_row,
    fetch_ticker_row,
    fetch_trades_range,
)
from market_warehouse.resources.exchanges.universe import ExchangeConfig, MetricSeries
from tests.fixtures.exchanges.replay import FIXTURES, BinanceReplay

NOW = datetime(2024, 3, 3, 10, 30, tzinfo=UTC)
DAY2 = (datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC))
GAP_HOURS = {5, 6, 7, 8, 9}


def binance_config(**overrides) -> ExchangeConfig:
    values = dict(
        name="binance",
        driver="binance",
        symbols=("BTC/USDT",),
        intervals=("1h",),
        options={"fetchMarkets": {"types": ["spot", "linear"]}},
        metrics=(MetricSeries("funding_rate", "BTC/USDT:USDT"),),
    )
    values.update(overrides)
    return ExchangeConfig(**values)


@pytest.fixture
def replay(httpserver):
    return BinanceReplay(httpserver)


@pytest.fixture
def exchange(replay):
    return build_exchange(binance_config(), api_base_url=replay.base_url)


class SleepRecorder:
    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def recorded_kline_times() -> list[pd.Timestamp]:
    rows = json.loads((FIXTURES / "klines_BTCUSDT_1h.json").read_text())
    return [pd.Timestamp(r[0], unit="ms", tz="UTC") for r in rows]


def test_every_api_url_points_at_the_local_server(replay, exchange):
    def urls(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from urls(v)
        elif isinstance(value, str):
            yield value

    found = list(urls(exchange.urls["api"]))
    assert found and all(u.startswith(replay.base_url) for u in found if u.startswith("http"))
    assert exchange.enableRateLimit is True


def test_pagination_over_a_partition_with_an_exchange_gap(replay, exchange):
    pulled = fetch_ohlcv_range(exchange, "BTC/USDT", "1h", *DAY2, limit=5, now=NOW)

    hours = [t.hour for t in pulled.frame["time"]]
    assert hours == [h for h in range(24) if h not in GAP_HOURS]
    expected = [t for t in recorded_kline_times() if DAY2[0] <= t < DAY2[1]]
    assert list(pulled.frame["time"]) == expected
    # 19 candles in pages of 5, Binance answers a `startTime` inside the gap with the candles after it;
    # the page that reaches past the window ends the walk.
    klines = [args for path, args in replay.requests if path == "/api/v3/klines"]
    assert len(klines) == pulled.stats.requests == 4
    assert [args["limit"] for args in klines] == ["5", "5", "5", "4"]  # the last page asks only what is left
    assert pulled.answered_until == pd.Timestamp(DAY2[1])
    # ccxt parsed Binance's strings into floats, first candle as recorded.
    first = json.loads((FIXTURES / "klines_BTCUSDT_1h.json").read_text())[24]
    assert pulled.frame.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        float(x) for x in first[1:6]
    ]


def test_empty_page_inside_the_window_moves_on_instead_of_stopping(replay, exchange):
    replay.windowed = True  # exchanges answering only [since, since + limit × 1h): the gap is an empty page

    pulled = fetch_ohlcv_range(exchange, "BTC/USDT", "1h", *DAY2, limit=3, now=NOW)

    assert [t.hour for t in pulled.frame["time"]] == [h for h in range(24) if h not in GAP_HOURS]
    assert pulled.stats.empty_pages >= 1
    # Bounded: one request per page span of 3 hours at most, never the same `since` twice.
    starts = [args["startTime"] for path, args in replay.requests if path == "/api/v3/klines"]
    assert len(starts) == len(set(starts)) <= 24 // 3 + 1


def test_the_open_candle_is_never_returned(exchange):
    pulled = fetch_ohlcv_range(
        exchange,
        "BTC/USDT",
        "1h",
        datetime(2024, 3, 3, tzinfo=UTC),
        datetime(2024, 3, 4, tzinfo=UTC),
        now=NOW,
    )

    assert recorded_kline_times()[-1] == pd.Timestamp("2024-03-03 10:00", tz="UTC")  # served, still open
    assert pulled.frame["time"].max() == pd.Timestamp("2024-03-03 09:00", tz="UTC")
    assert (pulled.frame["time"] + pd.Timedelta(hours=1) <= pd.Timestamp(NOW)).all()
    # Answered up to the last closed candle, not to the end of the day.
    assert pulled.answered_until == pd.Timestamp("2024-03-03 10:00", tz="UTC")


def test_429_is_answered_with_exponential_back_off_then_success(replay, exchange):
    replay.fail_with["/api/v3/klines"] = [429, 429]
    sleep = SleepRecorder()
    backoff = Backoff(base_delay=0.001, max_delay=1.0, max_retries=5, jitter=0.0, sleep=sleep)

    pulled = fetch_ohlcv_range(exchange, "BTC/USDT", "1h", *DAY2, limit=5, now=NOW, backoff=backoff)

    assert len(pulled.frame) == 19
    assert replay.statuses[429] == 2
    assert pulled.stats.rate_limited == 2 and pulled.stats.network_retries == 0
    assert sleep.delays == [0.001, 0.002]  # base × 2^attempt (Retry-After: 0 does not shorten it)
    assert replay.count("/api/v3/klines") == 4 + 2
    assert pulled.stats.requests == 6


def test_back_off_has_jitter_and_a_cap():
    backoff = Backoff(base_delay=1.0, max_delay=8.0, jitter=0.25)
    delays = [backoff.delay(attempt) for attempt in range(8) for _ in range(20)]
    assert all(0.75 <= d <= 10.0 for d in delays)
    late = [backoff.delay(10) for _ in range(50)]
    assert all(6.0 <= d <= 10.0 for d in late) and len(set(late)) > 1
    assert Backoff(base_delay=0.1, jitter=0.0).delay(0, retry_after=3.0) == 3.0


def test_rate_limit_beyond_max_retries_raises(replay, exchange):
    replay.fail_with["/api/v3/klines"] = [429] * 5
    backoff = Backoff(base_delay=0.0, max_retries=2, sleep=SleepRecorder())

    with pytest.raises(ccxt.DDoSProtection):
        fetch_ohlcv_range(exchange, "BTC/USDT", "1h", *DAY2, now=NOW, backoff=backoff)
    assert replay.count("/api/v3/klines") == 3


def test_unavailable_exchange_is_retried_as_a_network_error(replay, exchange):
    replay.fail_with["/api/v3/klines"] = [503]
    sleep = SleepRecorder()

    pulled = fetch_ohlcv_range(
        exchange, "BTC/USDT", "1h", *DAY2, now=NOW, backoff=Backoff(base_delay=0.001, sleep=sleep)
    )

    assert len(pulled.frame) == 19
    assert pulled.stats.network_retries == 1 and pulled.stats.rate_limited == 0 and len(sleep.delays) == 1


def test_trades_walk_window_by_window_through_a_quiet_period(replay, exchange):
    recorded = json.loads((FIXTURES / "aggTrades_BTCUSDT.json").read_text())
    start = datetime(2024, 3, 3, 9, tzinfo=UTC)

    pulled = fetch_trades_range(
        exchange, "BTC/USDT", start, datetime(2024, 3, 4, tzinfo=UTC), limit=40, now=NOW
    )

    # No trade 09:40-10:05 (recorded), trades again after: all of them arrive, once each.
    assert pulled.frame["trade_id"].tolist() == [str(t["a"]) for t in recorded]
    assert pulled.frame["time"].is_monotonic_increasing
    assert set(pulled.frame["side"]) == {"buy", "sell"}
    assert (pulled.frame["is_buyer_maker"] == (pulled.frame["side"] == "sell")).all()
    windows = [args for path, args in replay.requests if path == "/api/v3/aggTrades"]
    assert all(int(a["endTime"]) - int(a["startTime"]) < 3_600_000 for a in windows)
    assert pulled.answered_until == pd.Timestamp("2024-03-03 10:28", tz="UTC")  # now − settle (2m)


def test_order_book_snapshot_keeps_top_n_levels_and_depth(exchange):
    book = json.loads((FIXTURES / "depth_BTCUSDT.json").read_text())

    row = fetch_order_book_row(exchange, "binance", "BTC/USDT", 5, now=NOW)

    assert row["depth_levels"] == 5 and len(row["bids"]) == len(row["asks"]) == 5
    assert row["best_bid"] == float(book["bids"][0][0]) and row["best_ask"] == float(book["asks"][0][0])
    assert row["spread"] == pytest.approx(row["best_ask"] - row["best_bid"])
    assert row["mid_price"] == pytest.approx((row["best_ask"] + row["best_bid"]) / 2)
    assert row["bid_depth"] == pytest.approx(sum(float(a) for _, a in book["bids"][:5]))
    assert row["time"] == pd.Timestamp(NOW)  # Binance's spot depth has no timestamp: the time of asking


def test_ticker_becomes_a_market_metrics_row(exchange):
    ticker = json.loads((FIXTURES / "ticker_24hr_BTCUSDT.json").read_text())

    row = fetch_ticker_row(exchange, "binance", "BTC/USDT", now=NOW)

    assert row["last_price"] == float(ticker["lastPrice"])
    assert row["high_24h"] == float(ticker["highPrice"]) and row["low_24h"] == float(ticker["lowPrice"])
    assert row["volume_24h"] == float(ticker["volume"])
    assert row["time"] == pd.Timestamp(ticker["closeTime"], unit="ms", tz="UTC")
    high, low = float(ticker["highPrice"]), float(ticker["lowPrice"])
    parkinson = math.log(high / low) / math.sqrt(4 * math.log(2))
    assert row["volatility"] == pytest.approx(parkinson)


def test_funding_rate_and_open_interest_history(replay, exchange):
    window = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC))
    funding = fetch_funding_range(exchange, "BTC/USDT:USDT", *window, now=NOW)
    oi = fetch_open_interest_range(exchange, "BTC/USDT:USDT", "1h", *window, limit=24, now=NOW)

    recorded = json.loads((FIXTURES / "fundingRate_BTCUSDT.json").read_text())
    assert funding.frame["rate"].tolist() == [float(r["fundingRate"]) for r in recorded]
    # Binance sends the mark price at funding in its own field: kept; it sends no index price.
    assert funding.frame["mark_price"].tolist() == [float(r["markPrice"]) for r in recorded]
    assert funding.frame["index_price"].isna().all()
    assert list(funding.frame["time"]) == [
        pd.Timestamp(r["fundingTime"], unit="ms", tz="UTC") for r in recorded
    ]
    # Open interest: Binance serves it in windows of limit × period; 59 hourly points in 3 pages.
    assert len(oi.frame) == 59 and oi.frame["time"].is_monotonic_increasing
    recorded_oi = json.loads((FIXTURES / "openInterestHist_BTCUSDT_1h.json").read_text())[0]
    assert oi.frame.iloc[0][["amount", "value"]].tolist() == [
        float(recorded_oi["sumOpenInterest"]),
        float(recorded_oi["sumOpenInterestValue"]),
    ]
    assert replay.count("/futures/data/openInterestHist") == oi.stats.requests >= 3
