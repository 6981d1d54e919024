"""Coverage ledger and gap report against the real (embedded) PostgreSQL.

The ledger keeps answered-empty ranges from being fetched forever; the gap report follows market
calendars (24/7 crypto, XNYS sessions with weekends, holidays and early closes).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.exchanges.client import (
    Backoff,
    build_exchange,
    fetch_ohlcv_range,
    ohlcv_frame,
)
from market_warehouse.resources.exchanges.coverage import (
    SeriesKey,
    candle_gaps,
    record_coverage,
    subtract,
    union,
)
from market_warehouse.resources.exchanges.gaps import gap_report
from market_warehouse.resources.exchanges.ingest import LoadContext, ingest_candles
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from market_warehouse.resources.exchanges.universe import ExchangeConfig, parse_universe
from market_warehouse.resources.models import Coverage
from market_warehouse.resources.warehouse.load import load_frame
from tests.fixtures.exchanges.replay import BinanceReplay

REPLAY_NOW = datetime(2024, 3, 3, 10, 30, tzinfo=UTC)


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def ledger(engine, interval: str | None = None) -> list[tuple]:
    """The coverage rows (start, end, rows, status) of one interval (all when None), by start."""
    query = sa.select(Coverage.range_start, Coverage.range_end, Coverage.rows, Coverage.status)
    if interval is not None:
        query = query.where(Coverage.interval == interval)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(Coverage.range_start)).all()
    return [
        (pd.Timestamp(a).tz_convert("UTC"), pd.Timestamp(b).tz_convert("UTC"), n, s) for a, b, n, s in rows
    ]


def store_synthetic(engine, config: ExchangeConfig, symbol, interval, start, end, drop=(), now=None):
    """Candles of the synthetic exchange loaded straight through load_frame (no coverage recorded)."""
    now = now or datetime(2024, 7, 20, tzinfo=UTC)
    ex = SyntheticExchange(seed=config.seed, symbols=[symbol], calendar=config.calendar, clock=lambda: now)
    pulled = fetch_ohlcv_range(ex, symbol, interval, start, end, now=now)
    frame = ohlcv_frame(pulled, config.name, symbol, interval, config.source)
    frame = frame[~frame["time"].isin([t(d) for d in drop])]
    result = load_frame(engine, "ohlcv", frame, source=config.source, now=now)
    assert result.quarantined == 0, result.quarantine_reasons
    return frame


def test_ledger_merges_adjacent_ranges_and_replaces_contained_ones(engine):
    key = SeriesKey("ohlcv", "x", "A/B", "1m")
    with engine.begin() as conn:
        record_coverage(
            conn, key, t("2024-01-01 00:00"), t("2024-01-01 00:15"), rows=15, status="complete", source="s"
        )
        record_coverage(
            conn, key, t("2024-01-01 00:15"), t("2024-01-01 00:30"), rows=15, status="complete", source="s"
        )
        record_coverage(
            conn, key, t("2024-01-01 01:00"), t("2024-01-01 01:10"), rows=0, status="empty", source="s"
        )
    assert ledger(engine) == [
        (t("2024-01-01 00:00"), t("2024-01-01 00:30"), 30, "complete"),
        (t("2024-01-01 01:00"), t("2024-01-01 01:10"), 0, "empty"),
    ]
    with engine.begin() as conn:
        # Asked again for a range containing both: it replaces them; adjacent statuses mix to partial.
        record_coverage(
            conn, key, t("2024-01-01 00:00"), t("2024-01-01 01:10"), rows=50, status="partial", source="s"
        )
        record_coverage(
            conn, key, t("2024-01-01 01:10"), t("2024-01-01 01:20"), rows=10, status="complete", source="s"
        )
        # Another series is independent.
        record_coverage(
            conn,
            SeriesKey("ohlcv", "x", "A/B", "1h"),
            t("2024-01-01"),
            t("2024-01-02"),
            rows=24,
            status="complete",
            source="s",
        )
    assert ledger(engine, "1m") == [(t("2024-01-01 00:00"), t("2024-01-01 01:20"), 60, "partial")]
    assert ledger(engine, "1h") == [(t("2024-01-01"), t("2024-01-02"), 24, "complete")]


def test_range_arithmetic():
    covered = union(
        [(t("2024-01-01 02:00"), t("2024-01-01 03:00")), (t("2024-01-01 01:00"), t("2024-01-01 02:30"))]
    )
    assert covered == [(t("2024-01-01 01:00"), t("2024-01-01 03:00"))]
    assert subtract(t("2024-01-01 00:00"), t("2024-01-01 04:00"), covered) == [
        (t("2024-01-01 00:00"), t("2024-01-01 01:00")),
        (t("2024-01-01 03:00"), t("2024-01-01 04:00")),
    ]
    assert subtract(t("2024-01-01 01:30"), t("2024-01-01 02:00"), covered) == []


def test_answered_empty_range_is_not_fetched_again(any_engine, httpserver):
    engine = any_engine
    replay = BinanceReplay(httpserver)
    config = ExchangeConfig(
        name="binance",
        driver="binance",
        symbols=("BTC/USDT",),
        intervals=("1h",),
        options={"fetchMarkets": {"types": ["spot"]}},
    )
    ex = build_exchange(config, api_base_url=replay.base_url)
    ctx = LoadContext(engine, run_id="r1", now=REPLAY_NOW, backoff=Backoff(base_delay=0.0))
    # The recorded klines have no candle 2024-03-02 05:00-09:59: the exchange answers nothing there.
    window = (t("2024-03-02 05:00"), t("2024-03-02 10:00"))

    first = ingest_candles(ctx, ex, config, *window)
    asked = replay.count("/api/v3/klines")
    second = ingest_candles(ctx, ex, config, *window)

    assert first.ranges == 1 and asked >= 1 and first.load.fetched == 0
    assert second.ranges == 0 and replay.count("/api/v3/klines") == asked  # no request the second time
    assert ledger(engine) == [(window[0], window[1], 0, "empty")]
    with engine.connect() as conn:
        gaps = candle_gaps(conn, "binance", "BTC/USDT", "1h", "24/7", *window)
    assert (gaps.expected, gaps.stored, gaps.answered_empty, gaps.missing, gaps.ranges) == (5, 0, 5, 0, ())


def test_a_whole_day_with_the_exchange_gap_is_stored_and_covered_once(engine, httpserver):
    replay = BinanceReplay(httpserver)
    config = ExchangeConfig(
        name="binance",
        driver="binance",
        symbols=("BTC/USDT",),
        intervals=("1h",),
        options={"fetchMarkets": {"types": ["spot"]}},
    )
    ex = build_exchange(config, api_base_url=replay.base_url)
    ctx = LoadContext(engine, run_id="r1", now=REPLAY_NOW, backoff=Backoff(base_delay=0.0))

    day = ingest_candles(ctx, ex, config, t("2024-03-02"), t("2024-03-03"))
    today = ingest_candles(ctx, ex, config, t("2024-03-03"), t("2024-03-04"))

    assert (day.load.fetched, day.load.inserted, day.load.quarantined) == (19, 19, 0)
    assert today.load.inserted == 10  # 00:00-09:00; the open 10:00 candle was served and not stored
    with engine.connect() as conn:
        latest = conn.execute(sa.text("select max(time) from ohlcv")).scalar_one()
    assert pd.Timestamp(latest) == t("2024-03-03 09:00")
    assert ledger(engine) == [(t("2024-03-02"), t("2024-03-03 10:00"), 29, "partial")]


@pytest.fixture
def crypto_universe(tmp_path):
    raw = {
        "exchanges": {
            "synthetic": {"driver": "synthetic", "seed": 3, "symbols": ["BTC/USDT"], "intervals": ["1h"]}
        }
    }
    return parse_universe(raw, tmp_path / "u.yaml")


def test_gap_report_finds_the_known_holes_of_a_crypto_series(any_engine, crypto_universe):
    engine = any_engine
    config = crypto_universe.exchange("synthetic")
    holes = [
        "2024-03-01 03:00",
        "2024-03-02 10:00",
        "2024-03-02 11:00",
        "2024-03-02 12:00",
        "2024-03-03 23:00",
    ]
    store_synthetic(engine, config, "BTC/USDT", "1h", t("2024-03-01"), t("2024-03-04"), drop=holes)

    report = gap_report(engine, crypto_universe, t("2024-03-01"), t("2024-03-04"), now=t("2024-07-01"))

    (series,) = report.series
    assert (series.expected, series.stored, series.missing, series.answered_empty) == (72, 67, 5, 0)
    assert series.ranges == (
        (t("2024-03-01 03:00"), t("2024-03-01 04:00"), 1),
        (t("2024-03-02 10:00"), t("2024-03-02 13:00"), 3),
        (t("2024-03-03 23:00"), t("2024-03-04 00:00"), 1),
    )
    text = report.markdown()
    assert "| synthetic | BTC/USDT | 1h | trade | 24/7 | 72 | 67 | 0 | 5 | 3 |" in text
    assert "2024-03-02T10:00:00+00:00 | 2024-03-02T13:00:00+00:00 | 3" in text


def test_gap_report_respects_an_equity_calendar(engine, tmp_path):
    raw = {
        "exchanges": {
            "nyse": {
                "driver": "synthetic",
                "seed": 11,
                "calendar": "XNYS",
                "symbols": ["SPY/USD"],
                "intervals": ["1h", "1d"],
            }
        }
    }
    universe = parse_universe(raw, tmp_path / "u.yaml")
    config = universe.exchange("nyse")
    # 2024-07-01 .. 07-08: 07-03 closes at 13:00 ET, 07-04 is Independence Day, 07-06/07 a weekend.
    store_synthetic(
        engine,
        config,
        "SPY/USD",
        "1h",
        t("2024-07-01"),
        t("2024-07-09"),
        drop=["2024-07-02 15:00", "2024-07-05 13:00"],
    )
    store_synthetic(engine, config, "SPY/USD", "1d", t("2024-07-01"), t("2024-07-09"), drop=["2024-07-08"])

    report = gap_report(engine, universe, t("2024-07-01"), t("2024-07-09"), now=t("2024-07-20"))

    hourly, daily = report.series
    assert (hourly.expected, hourly.missing) == (7 + 7 + 4 + 7 + 7, 2)
    assert [(lo, n) for lo, _, n in hourly.ranges] == [(t("2024-07-02 15:00"), 1), (t("2024-07-05 13:00"), 1)]
    assert (daily.expected, daily.stored, daily.missing) == (5, 4, 1)
    assert daily.ranges == ((t("2024-07-08"), t("2024-07-09"), 1),)
    # Holiday, weekend and after-close hours are not gaps.
    every_gap = [lo for s in report.series for lo, _, _ in s.ranges]
    assert not any(g.date().isoformat() in {"2024-07-04", "2024-07-06", "2024-07-07"} for g in every_gap)


def test_backfilling_the_report_fetches_exactly_the_missing_ranges(engine, crypto_universe):
    config = crypto_universe.exchange("synthetic")
    now = datetime(2024, 7, 1, tzinfo=UTC)
    holes = ["2024-03-01 03:00", "2024-03-02 10:00", "2024-03-02 11:00"]
    stored = store_synthetic(
        engine, config, "BTC/USDT", "1h", t("2024-03-01"), t("2024-03-03"), drop=holes, now=now
    )
    report = gap_report(engine, crypto_universe, t("2024-03-01"), t("2024-03-03"), now=now)
    (series,) = report.series
    ex = SyntheticExchange(seed=3, symbols=["BTC/USDT"], clock=lambda: now)
    calls = []
    original = ex.fetch_ohlcv
    ex.fetch_ohlcv = lambda *a, **k: calls.append((k["since"], k["limit"])) or original(*a, **k)

    ctx = LoadContext(engine, run_id="gaps", now=now)
    result = ingest_candles(
        ctx,
        ex,
        config,
        report.start,
        report.end,
        ranges={("BTC/USDT", "1h"): [(lo, hi) for lo, hi, _ in series.ranges]},
    )

    # One request per hole, each asking exactly the missing candles.
    assert [(pd.Timestamp(since, unit="ms", tz="UTC"), limit) for since, limit in calls] == [
        (t("2024-03-01 03:00"), 1),
        (t("2024-03-02 10:00"), 2),
    ]
    assert (result.load.fetched, result.load.inserted) == (3, 3)
    after = gap_report(engine, crypto_universe, t("2024-03-01"), t("2024-03-03"), now=now)
    assert after.gap_count == 0 and after.series[0].stored == 48
    assert len(stored) == 45


def test_intraday_top_up_asks_only_the_candles_closed_since(engine, crypto_universe):
    config = crypto_universe.exchange("synthetic")
    day = (t("2024-03-05"), t("2024-03-06"))
    morning, noon = t("2024-03-05 10:30"), t("2024-03-05 12:05")
    calls = []

    def exchange_at(now):
        ex = SyntheticExchange(seed=3, symbols=["BTC/USDT"], clock=lambda: now.to_pydatetime())
        original = ex.fetch_ohlcv
        ex.fetch_ohlcv = lambda *a, **k: calls.append((k["since"], k["limit"])) or original(*a, **k)
        return ex

    first = ingest_candles(LoadContext(engine, now=morning), exchange_at(morning), config, *day)
    calls.clear()
    second = ingest_candles(LoadContext(engine, now=noon), exchange_at(noon), config, *day)

    assert first.load.inserted == 10  # 00:00-09:00 closed at 10:30
    assert second.load.inserted == 2  # 10:00 and 11:00, nothing else asked
    assert [(pd.Timestamp(s, unit="ms", tz="UTC"), n) for s, n in calls] == [(t("2024-03-05 10:00"), 2)]
    assert ledger(engine) == [(t("2024-03-05"), t("2024-03-05 12:00"), 12, "complete")]
