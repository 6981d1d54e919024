"""The synthetic exchange: deterministic whatever the window, internally consistent, calendar-aware."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from market_warehouse.resources.exchanges.client import fetch_ohlcv_range, fetch_trades_range
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from tests.sessions import DAY_MS, HOUR_MS, MINUTE_MS, Sessions, expected_lefts

NOW = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)


def exchange(
    seed: int = 7, calendar: str = "24/7", symbols=("BTC/USDT", "ETH/USDT"), now: datetime = NOW
) -> SyntheticExchange:
    return SyntheticExchange(seed=seed, symbols=symbols, calendar=calendar, clock=lambda: now)


def candles(ex, symbol, interval, start, end, limit=1000) -> pd.DataFrame:
    return fetch_ohlcv_range(ex, symbol, interval, start, end, limit=limit, now=ex.clock()).frame


def ts(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def test_same_window_twice_gives_identical_frames_even_from_a_fresh_instance():
    first = candles(exchange(), "BTC/USDT", "1m", ts("2024-03-02 22:00"), ts("2024-03-03 02:00"))
    second = candles(exchange(), "BTC/USDT", "1m", ts("2024-03-02 22:00"), ts("2024-03-03 02:00"))

    assert len(first) == 240
    pd.testing.assert_frame_equal(first, second)


def test_overlapping_windows_and_page_sizes_agree_on_the_overlap():
    ex = exchange()
    a = candles(ex, "BTC/USDT", "1m", ts("2024-03-02 20:00"), ts("2024-03-03 01:00"), limit=1000)
    b = candles(exchange(), "BTC/USDT", "1m", ts("2024-03-02 23:30"), ts("2024-03-03 04:00"), limit=37)

    overlap_a = a[a["time"] >= pd.Timestamp("2024-03-02 23:30", tz="UTC")].reset_index(drop=True)
    overlap_b = b[b["time"] < pd.Timestamp("2024-03-03 01:00", tz="UTC")].reset_index(drop=True)
    assert len(overlap_a) == 90
    pd.testing.assert_frame_equal(overlap_a, overlap_b)


def test_seeds_and_symbols_give_different_paths():
    window = (ts("2024-03-02"), ts("2024-03-02 03:00"))
    btc = candles(exchange(seed=7), "BTC/USDT", "1m", *window)["close"].to_numpy()
    other_seed = candles(exchange(seed=8), "BTC/USDT", "1m", *window)["close"].to_numpy()
    eth = candles(exchange(seed=7), "ETH/USDT", "1m", *window)["close"].to_numpy()
    assert not np.allclose(btc, other_seed) and not np.allclose(btc / btc[0], eth / eth[0])


def test_candles_are_valid_and_realistic():
    frame = candles(exchange(), "BTC/USDT", "1m", ts("2024-03-01"), ts("2024-03-03"))

    assert len(frame) == 2 * 1440
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["volume"] > 0).all() and (frame["trades_count"] >= 4).all()
    # Continuous: each open is the previous close.
    assert (frame["open"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all()
    # GBM with 60 % annual volatility: per-minute log returns have about 0.6 / sqrt(365 × 1440) std.
    returns = np.diff(np.log(frame["close"].to_numpy()))
    assert 0.5 < returns.std() / (0.6 / np.sqrt(365 * 1440)) < 2.0
    assert abs(returns.mean()) < 5 * returns.std() / np.sqrt(len(returns))
    # vwap inside the range.
    vwap = frame["quote_volume"] / frame["volume"]
    assert ((vwap >= frame["low"] - 1e-6) & (vwap <= frame["high"] + 1e-6)).all()


def test_hourly_candles_aggregate_the_minute_candles_and_the_trades():
    ex = exchange()
    start, end = ts("2024-03-02 10:00"), ts("2024-03-02 13:00")
    hours = candles(ex, "BTC/USDT", "1h", start, end)
    minutes = candles(ex, "BTC/USDT", "1m", start, end)
    trades = fetch_trades_range(ex, "BTC/USDT", start, end, now=NOW).frame

    grouped = minutes.groupby(minutes["time"].dt.floor("1h"))
    assert hours["open"].tolist() == grouped["open"].first().tolist()
    assert hours["close"].tolist() == grouped["close"].last().tolist()
    assert hours["high"].tolist() == grouped["high"].max().tolist()
    assert hours["low"].tolist() == grouped["low"].min().tolist()
    assert hours["volume"].to_numpy() == pytest.approx(grouped["volume"].sum().to_numpy())
    assert hours["trades_count"].sum() == len(trades)
    by_hour = trades.groupby(trades["time"].dt.floor("1h"))
    assert hours["high"].tolist() == by_hour["price"].max().tolist()
    assert hours["open"].tolist() == by_hour["price"].first().tolist()
    assert hours["volume"].to_numpy() == pytest.approx(by_hour["amount"].sum().to_numpy())


def test_nothing_after_now_and_open_candle_withheld():
    ex = exchange()
    frame = candles(ex, "BTC/USDT", "1h", ts("2024-03-08"), ts("2024-03-09"))
    assert frame["time"].max() == pd.Timestamp("2024-03-08 11:00", tz="UTC")
    raw = ex.fetch_ohlcv(
        "BTC/USDT", "1h", since=int(pd.Timestamp("2024-03-08 11:00", tz="UTC").value // 10**6)
    )
    assert [pd.Timestamp(r[0], unit="ms", tz="UTC").hour for r in raw] == [11, 12]  # 12:00 open, served
    trades = ex.fetch_trades("BTC/USDT", since=int(pd.Timestamp("2024-03-08 11:59", tz="UTC").value // 10**6))
    assert trades and max(t["timestamp"] for t in trades) <= int(pd.Timestamp(NOW).value // 10**6)


def test_equity_calendar_has_candles_only_in_sessions():
    ex = exchange(seed=11, calendar="XNYS", symbols=("SPY/USD",), now=datetime(2024, 7, 10, tzinfo=UTC))
    # 2024-07-03 closes early (13:00 ET), 07-04 is a holiday, 07-06/07 a weekend.
    hourly = candles(ex, "SPY/USD", "1h", ts("2024-07-01"), ts("2024-07-09"))
    daily = candles(ex, "SPY/USD", "1d", ts("2024-07-01"), ts("2024-07-09"))

    days = sorted({t.date().isoformat() for t in hourly["time"]})
    assert days == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
    per_day = hourly.groupby(hourly["time"].dt.date).size().to_dict()
    assert [per_day[d] for d in sorted(per_day)] == [7, 7, 4, 7, 7]
    assert hourly["time"].dt.minute.eq(0).all()  # on the UTC grid, the 13:00 candle holds 13:30-14:00
    assert daily["time"].dt.date.astype(str).tolist() == days
    first_day = hourly[hourly["time"].dt.date == pd.Timestamp("2024-07-01").date()]
    assert daily.iloc[0]["open"] == first_day.iloc[0]["open"]
    assert daily.iloc[0]["close"] == first_day.iloc[-1]["close"]
    assert daily.iloc[0]["volume"] == pytest.approx(first_day["volume"].sum())


def test_order_book_and_ticker_are_consistent_and_repeatable():
    ex = exchange()
    at = {"at": int(pd.Timestamp("2024-03-05 15:00", tz="UTC").value // 10**6)}
    book = ex.fetch_order_book("BTC/USDT", 10, at)

    assert book == exchange().fetch_order_book("BTC/USDT", 10, at)
    bids, asks = np.array(book["bids"]), np.array(book["asks"])
    assert len(bids) == len(asks) == 10
    assert (np.diff(bids[:, 0]) < 0).all() and (np.diff(asks[:, 0]) > 0).all() and bids[0, 0] < asks[0, 0]
    ticker = ex.fetch_ticker("BTC/USDT", at)
    assert ticker["bid"] == bids[0, 0] and ticker["ask"] == asks[0, 0]
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    day = candles(ex, "BTC/USDT", "1h", ts("2024-03-04 15:00"), ts("2024-03-05 15:00"))
    assert ticker["high"] == day["high"].max() and ticker["open"] == day.iloc[0]["open"]
    assert ticker["baseVolume"] == pytest.approx(day["volume"].sum())


def test_metric_history_is_on_its_grid():
    ex = exchange(symbols=("BTC/USDT:USDT",))
    since = int(pd.Timestamp("2024-03-01", tz="UTC").value // 10**6)
    funding = ex.fetch_funding_rate_history("BTC/USDT:USDT", since=since, limit=6)
    oi = ex.fetch_open_interest_history("BTC/USDT:USDT", "1h", since=since, limit=24)

    assert [f["timestamp"] - since for f in funding] == [i * 8 * 3_600_000 for i in range(6)]
    assert all(abs(f["fundingRate"]) < 0.01 for f in funding)
    assert len(oi) == 24 and all(o["openInterestAmount"] > 0 for o in oi)
    assert funding == ex.fetch_funding_rate_history("BTC/USDT:USDT", since=since, limit=6)


# --- every day of a year, on both calendars, with the project clock pinned ---------------------------------


def _check_candles(rows: list[list], step_ms: int, now_ms: int) -> None:
    times = [r[0] for r in rows]
    assert times == sorted(set(times)) and all(t % step_ms == 0 for t in times)
    assert all(t <= now_ms for t in times)
    assert all(t + step_ms <= now_ms for t in times[:-1])  # only the last one may still be open
    for _, o, h, low, c, v, *_ in rows:
        assert low <= min(o, c) <= max(o, c) <= h and v > 0


def _check_instant(ex: SyntheticExchange, sessions: Sessions, symbol: str, now_ms: int) -> None:
    calendar = ex.calendar
    assert ex.milliseconds() == now_ms  # the exchange reads the project's clock
    since_m, since_h = now_ms - 3 * HOUR_MS, now_ms - 3 * DAY_MS
    minutes = ex.fetch_ohlcv(symbol, "1m", since=since_m, limit=1000)
    hours = ex.fetch_ohlcv(symbol, "1h", since=since_h, limit=1000)
    days = ex.fetch_ohlcv(symbol, "1d", since=now_ms - 10 * DAY_MS, limit=100)
    latest = ex.fetch_ohlcv(symbol, "1h", limit=5)
    for rows, step in ((minutes, MINUTE_MS), (hours, HOUR_MS), (days, DAY_MS), (latest, HOUR_MS)):
        _check_candles(rows, step, now_ms)
    assert [r[0] for r in minutes] == expected_lefts(calendar, sessions, MINUTE_MS, since_m, now_ms)
    assert [r[0] for r in hours] == expected_lefts(calendar, sessions, HOUR_MS, since_h, now_ms)
    assert [r[0] for r in latest] == expected_lefts(
        calendar, sessions, HOUR_MS, now_ms - 20 * DAY_MS, now_ms
    )[-5:]
    if calendar == "24/7":
        assert len(days) == 10 or len(days) == 11
    else:
        assert all(pd.Timestamp(r[0], unit="ms").date() in sessions.dates for r in days)

    trades = ex.fetch_trades(symbol, since=now_ms - HOUR_MS, limit=1000)
    stamps = np.array([t["timestamp"] for t in trades], dtype=np.int64)
    assert len(trades) < 1000 and (np.diff(stamps) >= 0).all()
    assert ((stamps >= now_ms - HOUR_MS) & (stamps <= now_ms)).all()
    if calendar != "24/7":
        assert sessions.holding(stamps).all()
    by_minute = {r[0]: r for r in minutes}
    for trade in trades:  # every trade lies inside its minute candle's range
        candle = by_minute[trade["timestamp"] // MINUTE_MS * MINUTE_MS]
        assert candle[3] <= trade["price"] <= candle[2]

    book = ex.fetch_order_book(symbol, 5)
    bids, asks = np.array(book["bids"]), np.array(book["asks"])
    assert book["timestamp"] == now_ms and bids[0, 0] < asks[0, 0]
    assert (np.diff(bids[:, 0]) < 0).all() and (np.diff(asks[:, 0]) > 0).all()
    ticker = ex.fetch_ticker(symbol)
    assert ticker["timestamp"] == now_ms and (ticker["bid"], ticker["ask"]) == (bids[0, 0], asks[0, 0])
    open_now = calendar == "24/7" or sessions.holding(np.array([now_ms]))[0]
    if trades:  # the last price is the tape's last trade
        assert ticker["last"] == trades[-1]["price"]
        assert ticker["low"] <= ticker["last"] <= ticker["high"]
    elif not open_now:  # closed: the last session minute's close, and no volume unless traded in 24 h
        last_minute = ex.fetch_ohlcv(symbol, "1m", limit=1)[-1]
        assert last_minute[0] + MINUTE_MS <= now_ms and ticker["last"] == last_minute[4]


@pytest.mark.parametrize("calendar", ["24/7", "XNYS"])
def test_every_day_of_2026_every_public_method_with_the_clock_pinned(calendar):
    from market_warehouse.resources import clock

    symbol = "BTC/USDT" if calendar == "24/7" else "SPY/USD"
    perp = "BTC/USDT:USDT"
    ex = SyntheticExchange(seed=3, symbols=(symbol, perp), calendar=calendar)  # no clock: the project's
    sessions = Sessions("2025-12-01", "2027-01-31")
    rng = np.random.default_rng(2026)
    checked = 0
    in_session = 0
    for day in pd.date_range("2026-01-01", "2026-12-31", tz="UTC"):
        # One instant per day, anywhere in it (the ms too): sessions, nights, weekends and holidays alike.
        now_ms = int(day.value // 1_000_000) + int(rng.integers(0, DAY_MS))
        with clock.frozen(pd.Timestamp(now_ms, unit="ms", tz="UTC").to_pydatetime()):
            _check_instant(ex, sessions, symbol, now_ms)
            if calendar == "24/7":
                funding = ex.fetch_funding_rate_history(perp, limit=3)
                interest = ex.fetch_open_interest_history(perp, "1h", limit=5)
                assert [f["timestamp"] % (8 * HOUR_MS) for f in funding] == [0, 0, 0]
                assert now_ms - 8 * HOUR_MS < funding[-1]["timestamp"] <= now_ms
                assert now_ms - HOUR_MS < interest[-1]["timestamp"] <= now_ms and len(interest) == 5
        checked += 1
        in_session += bool(sessions.holding(np.array([now_ms]))[0])
    assert checked == 365
    assert 40 < in_session < 140  # the draw lands inside sessions too (about 1 instant in 4 on weekdays)


def test_trades_and_ticker_on_a_closed_market_day():
    """The crash of issue 11: a span holding no session minute (a Saturday) made `_in_session` index an
    empty array."""
    ex = exchange(seed=11, calendar="XNYS", symbols=("SPY/USD",), now=ts("2026-11-29 00:05"))
    saturday = int(pd.Timestamp("2026-11-28", tz="UTC").value // 10**6)

    assert ex.trades_between("SPY/USD", saturday, saturday + DAY_MS).empty
    assert ex.fetch_trades("SPY/USD", since=saturday) == []
    ticker = ex.fetch_ticker("SPY/USD")
    friday = candles(ex, "SPY/USD", "1h", ts("2026-11-27"), ts("2026-11-28"))
    assert ticker["baseVolume"] == 0 and ticker["last"] == friday["close"].iloc[-1]
    assert friday["time"].iloc[-1] == pd.Timestamp("2026-11-27 17:00", tz="UTC")  # half day: 13:00 ET close
