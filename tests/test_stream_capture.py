"""Live capture against a local Binance: recorded frames over a real websocket, REST back-fill from the
recorded REST responses, real ccxt.pro parsing, real PostgreSQL. After each scenario the tables equal the
recorded truth: no trade lost or doubled, only closed candles, holes recorded and repaired.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.exchanges.client import Backoff
from market_warehouse.resources.exchanges.coverage import SeriesKey, covered_ranges
from market_warehouse.resources.exchanges.universe import ExchangeConfig
from market_warehouse.resources.models import (
    CaptureGap,
    MarketMetric,
    MarketTrade,
    Ohlcv,
    OrderbookSnapshot,
    Quarantine,
    SystemEvent,
)
from market_warehouse.resources.stream.config import parse_stream
from market_warehouse.resources.stream.ledger import stream_status
from market_warehouse.resources.stream.service import CaptureService
from tests.fixtures.exchanges.replay import BinanceReplay
from tests.stream_data import (
    DEPTH_STREAM,
    KLINES_STREAM,
    TICKER_STREAM,
    TRADES_STREAM,
    BinanceWsReplay,
    Session,
    depth_frame,
    kline_frame,
    recorded_agg_trades,
    recorded_depth,
    recorded_klines,
    recorded_ticker,
    ticker_frame,
    trade_frame,
)

TRADES = recorded_agg_trades()
QUICK_RETRY = Backoff(base_delay=0.01, max_delay=0.05, max_retries=1)
KLINES = [k for k in recorded_klines()[:40]]  # 1h candles, all closed


def stream_config(channels=("trades",), options=None, **stream):
    exchange = ExchangeConfig(
        name="binance",
        driver="binance",
        symbols=("BTC/USDT",),
        intervals=("1h",),
        options={"fetchMarkets": {"types": ["spot"]}, **(options or {})},
        stream={"channels": list(channels), "flush_ms": 100, "candle_interval": "1h", **stream},
    )
    return parse_stream(exchange, "test-universe.yaml")


def run_capture(
    engine,
    rest_url,
    sessions,
    done,
    channels=("trades",),
    timeout=30.0,
    options=None,
    writer="process",
    meanwhile=None,
    **stream,
):
    """Run the service against the local servers until `done(conn)` holds (or `timeout`); its stats.
    `meanwhile(conn, service)` is called at every poll (to act on the service while it runs)."""

    async def scenario():
        async with BinanceWsReplay(sessions) as ws:
            config = stream_config(channels, options, reconnect_base_s=0.05, reconnect_max_s=0.2, **stream)
            service = CaptureService(
                config,
                engine,
                api_base_url=rest_url,
                ws_base_url=ws.base_url,
                rest_backoff=QUICK_RETRY,
                writer=writer,
            )
            stop = asyncio.Event()
            runner = asyncio.create_task(service.run(stop))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not runner.done():
                await asyncio.sleep(0.2)
                if meanwhile is not None:
                    await asyncio.to_thread(_holds, engine, lambda conn: meanwhile(conn, service))
                if await asyncio.to_thread(_holds, engine, done):
                    break
            stop.set()
            return await runner

    return asyncio.run(scenario())


def _holds(engine, done) -> bool:
    with engine.connect() as conn:
        return done(conn)


def stored_trades(conn) -> pd.DataFrame:
    rows = conn.execute(
        sa.select(
            MarketTrade.trade_id, MarketTrade.time, MarketTrade.price, MarketTrade.received_at
        ).order_by(MarketTrade.time, MarketTrade.trade_id)
    ).all()
    return pd.DataFrame(rows, columns=["trade_id", "time", "price", "received_at"])


def truth_ids(trades) -> list[str]:
    return sorted(str(t["a"]) for t in trades)


def trades_complete(expected):
    def done(conn) -> bool:
        ids = conn.execute(sa.select(MarketTrade.trade_id)).scalars().all()
        open_gaps = conn.execute(sa.select(sa.func.count()).where(CaptureGap.status == "open")).scalar()
        return sorted(ids) == expected and open_gaps == 0

    return done


@pytest.fixture
def rest(httpserver):
    return BinanceReplay(httpserver)


def test_dropped_connection_is_a_hole_back_filled_over_rest(any_engine, rest):
    """Trades 40..59 never reach the websocket: the drop opens a hole, REST fills it, nothing is doubled."""
    first = [trade_frame(t) for t in TRADES[:40]]
    second = [trade_frame(t) for t in TRADES[60:]]
    sessions = {TRADES_STREAM: [Session(first, drop=True), Session(second)]}
    stats = run_capture(any_engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)))
    with any_engine.connect() as conn:
        stored = stored_trades(conn)
        gaps = conn.execute(sa.select(CaptureGap)).all()
        events = conn.execute(
            sa.select(SystemEvent.event_type).where(SystemEvent.source == "stream")
        ).scalars()
        events = sorted(events)
        covered = covered_ranges(
            conn,
            SeriesKey("market_trades", "binance", "BTC/USDT"),
            pd.Timestamp(0, tz="UTC"),
            pd.Timestamp.max.tz_localize("UTC"),
        )
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert stored["trade_id"].is_unique
    truth_prices = {str(t["a"]): float(t["p"]) for t in TRADES}
    assert all(truth_prices[i] == p for i, p in zip(stored["trade_id"], stored["price"], strict=True))
    # Streamed trades carry their arrival time; back-filled ones do not (they never arrived live).
    back_filled = {str(t["a"]) for t in TRADES[40:60]}
    streamed = stored[~stored["trade_id"].isin(back_filled)]
    assert streamed["received_at"].notna().all()
    assert stored[stored["trade_id"].isin(back_filled)]["received_at"].isna().all()
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap.channel, gap.reason, gap.status, gap.filled) == ("trades", "disconnect", "filled", True)
    assert gap.gap_start == pd.Timestamp(TRADES[39]["T"], unit="ms", tz="UTC")
    assert gap.gap_end == pd.Timestamp(TRADES[60]["T"], unit="ms", tz="UTC")
    assert gap.rows_filled >= 20
    assert events == ["stream_disconnect", "stream_resubscribed"]
    # The stream's coverage, hole included, is one stretch: the daily REST pull skips all of it.
    assert covered == [
        (
            pd.Timestamp(TRADES[0]["T"], unit="ms", tz="UTC"),
            pd.Timestamp(TRADES[-1]["T"], unit="ms", tz="UTC"),
        )
    ]
    assert stats.quarantined == 0


def test_duplicates_after_resubscribe_are_stored_once(engine, rest):
    """The exchange repeats the last 15 trades after the resubscribe: stored once, counted as duplicates."""
    first = [trade_frame(t) for t in TRADES[:50]]
    second = [trade_frame(t) for t in TRADES[35:]]
    sessions = {TRADES_STREAM: [Session(first, drop=True), Session(second)]}
    stats = run_capture(engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)))
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gap = conn.execute(sa.select(CaptureGap)).one()
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert stats.duplicates == 15
    assert gap.status == "filled"
    assert gap.gap_end == gap.gap_start  # nothing was missing: the hole is empty


def test_out_of_order_delivery_stores_every_trade_once(engine, rest):
    shuffled = TRADES[:]
    random.Random(7).shuffle(shuffled)
    sessions = {TRADES_STREAM: [Session([trade_frame(t) for t in shuffled])]}
    run_capture(engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)))
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gaps = conn.execute(sa.select(sa.func.count()).select_from(CaptureGap)).scalar()
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert gaps == 0


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_malformed_message_is_quarantined_with_its_reason_and_the_stream_continues(engine, rest, writer):
    bad = {**TRADES[30], "a": 9_999_999_999, "p": "-62000.00"}
    frames = (
        [trade_frame(t) for t in TRADES[:31]] + [trade_frame(bad)] + [trade_frame(t) for t in TRADES[31:]]
    )
    sessions = {TRADES_STREAM: [Session(frames)]}
    stats = run_capture(engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)), writer=writer)
    with engine.connect() as conn:
        stored = stored_trades(conn)
        quarantined = conn.execute(
            sa.select(Quarantine.rule, Quarantine.source, Quarantine.row_data).where(
                Quarantine.table_name == "market_trades"
            )
        ).all()
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert stats.quarantined == 1
    assert [(q.rule, q.source, q.row_data["trade_id"]) for q in quarantined] == [
        ("price_positive", "stream:binance", "9999999999")
    ]


def test_a_killed_writer_process_is_replaced_and_no_trade_is_lost_or_doubled(engine, rest):
    """The writer process dies (SIGKILL) after the first trades are committed: a new writer takes over, the
    batch it was handed is written (again, idempotently), and the table equals the recorded trades."""
    killed: list[int] = []
    services: list[CaptureService] = []

    def kill_writer_once(conn, service) -> None:
        stored = conn.execute(sa.select(sa.func.count()).select_from(MarketTrade)).scalar()
        if not killed and stored:
            killed.append(service.writer.pid)
            services.append(service)
            os.kill(service.writer.pid, signal.SIGKILL)

    frames = [trade_frame(t) for t in TRADES]
    sessions = {TRADES_STREAM: [Session(frames, pauses={20: 1.0, 60: 1.0})]}
    stats = run_capture(
        engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)), meanwhile=kill_writer_once
    )
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gaps = conn.execute(sa.select(sa.func.count()).select_from(CaptureGap)).scalar()
    assert killed, "the writer was never killed: the scenario did not test anything"
    assert services[0].writer.pid not in (None, killed[0])  # a new writer wrote the rest
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert stats.rows == len(TRADES)
    assert gaps == 0


def test_only_closed_candles_are_stored_and_a_hole_is_back_filled(engine, rest):
    """Kline updates (open, then closed) of 40 hourly candles; the connection drops for candles 10..19."""
    frames = lambda ks: [f for k in ks for f in (kline_frame(k, closed=False), kline_frame(k))]  # noqa: E731
    sessions = {KLINES_STREAM: [Session(frames(KLINES[:10]), drop=True), Session(frames(KLINES[20:]))]}
    expected = [pd.Timestamp(k[0], unit="ms", tz="UTC") for k in KLINES[:-1]]  # the last one is still open

    def done(conn):
        times = conn.execute(sa.select(Ohlcv.time).order_by(Ohlcv.time)).scalars().all()
        status = conn.execute(sa.select(CaptureGap.status)).scalars().all()
        return list(times) == expected and status == ["filled"]

    run_capture(engine, rest.base_url, sessions, done, channels=("ohlcv",))
    with engine.connect() as conn:
        stored = pd.DataFrame(
            conn.execute(sa.select(Ohlcv.time, Ohlcv.close, Ohlcv.volume).order_by(Ohlcv.time)).all()
        )
    assert list(stored["time"]) == expected
    truth = {pd.Timestamp(k[0], unit="ms", tz="UTC"): (float(k[4]), float(k[5])) for k in KLINES}
    assert all(truth[t] == (c, v) for t, c, v in stored.itertuples(index=False))


def test_order_book_snapshots_are_top_n_of_the_live_book(engine, rest):
    """The REST snapshot plus two diffs in sequence: the stored snapshot is the book after the diffs."""
    book = recorded_depth()
    nonce = book["lastUpdateId"]
    best_bid = float(book["bids"][0][0])
    diffs = [
        depth_frame(nonce + 1, nonce + 2, 1709461800000, [[book["bids"][0][0], "0"]], []),
        depth_frame(nonce + 3, nonce + 3, 1709461801000, [], [["62031.41000000", "0.5"]]),
    ]
    sessions = {DEPTH_STREAM: [Session(diffs, pause_s=0.3)]}

    def done(conn):
        return conn.execute(sa.select(sa.func.count()).select_from(OrderbookSnapshot)).scalar() >= 2

    run_capture(engine, rest.base_url, sessions, done, channels=("orderbook",), book_every_ms=1, book_depth=5)
    with engine.connect() as conn:
        last = conn.execute(sa.select(OrderbookSnapshot).order_by(OrderbookSnapshot.time.desc())).first()
    assert last.time == pd.Timestamp(1709461801000, unit="ms", tz="UTC")
    assert last.depth_levels == 5
    assert last.best_bid == float(book["bids"][1][0]) < best_bid  # the best bid was removed by the diff
    assert last.best_ask == 62031.41


def test_status_reports_each_stream_and_the_service_logs_a_line_per_period(engine, rest, caplog):
    sessions = {TRADES_STREAM: [Session([trade_frame(t) for t in TRADES])]}

    def logged_and_complete(conn):
        return trades_complete(truth_ids(TRADES))(conn) and f"{len(TRADES)} rows/min" in caplog.text

    with caplog.at_level(logging.INFO, logger="market_warehouse.resources.stream.service"):
        run_capture(engine, rest.base_url, sessions, logged_and_complete, log_every_s=0.3)
    lines = [r.getMessage() for r in caplog.records if "rows/min" in r.getMessage()]
    assert re.fullmatch(
        r"stream binance: \d+ rows/min, lag p50/p99 (\d+/\d+ ms|n/a), reconnects 0, open holes 0", lines[-1]
    )
    assert any(f"stream binance: {len(TRADES)} rows/min" in line for line in lines)
    with engine.connect() as conn:
        (status,) = stream_status(conn)
    assert (status.exchange, status.symbol, status.channel, status.status) == (
        "binance",
        "BTC/USDT",
        "trades",
        "stopped",
    )
    assert status.rows_total == len(TRADES)
    assert status.last_exchange_time == pd.Timestamp(TRADES[-1]["T"], unit="ms", tz="UTC")
    assert status.open_gaps == 0 and not status.stale(60)


def test_a_restart_back_fills_from_the_last_committed_trade(engine, rest):
    """Stopped after trade 39 (SIGTERM flushes it), started again when the exchange is at trade 70: the
    restart's hole is recorded and back-filled, so the trades in between are not lost."""

    def stored_through(index):
        return lambda conn: (
            str(TRADES[index]["a"]) in conn.execute(sa.select(MarketTrade.trade_id)).scalars().all()
        )

    run_capture(
        engine,
        rest.base_url,
        {TRADES_STREAM: [Session([trade_frame(t) for t in TRADES[:40]])]},
        stored_through(39),
    )
    later = {TRADES_STREAM: [Session([trade_frame(t) for t in TRADES[70:]])]}
    run_capture(engine, rest.base_url, later, trades_complete(truth_ids(TRADES)))
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gap = conn.execute(sa.select(CaptureGap)).one()
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert (gap.reason, gap.status) == ("restart", "filled")
    assert gap.gap_start == pd.Timestamp(TRADES[39]["T"], unit="ms", tz="UTC")
    assert gap.gap_end == pd.Timestamp(TRADES[70]["T"], unit="ms", tz="UTC")


def test_a_burst_beyond_ccxts_trade_cache_is_a_hole_back_filled(engine, rest):
    """ccxt.pro keeps only its newest `tradesLimit` trades: a burst larger than that between two watches is
    recorded as an 'overflow' hole and back-filled, so the trades ccxt dropped are not lost."""
    # Three trades arrive one by one, the other 123 in one burst.
    paced = {0: 0.3, 1: 0.3, 2: 0.5}
    sessions = {TRADES_STREAM: [Session([trade_frame(t) for t in TRADES], pauses=paced)]}
    run_capture(
        engine, rest.base_url, sessions, trades_complete(truth_ids(TRADES)), options={"tradesLimit": 5}
    )
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gaps = conn.execute(sa.select(CaptureGap.reason, CaptureGap.status)).all()
    assert sorted(stored["trade_id"]) == truth_ids(TRADES)
    assert gaps and {tuple(g) for g in gaps} == {("overflow", "filled")}


def test_tickers_become_market_metrics_rows_on_their_grid(engine, rest):
    """As on the REST path, a ticker row sits on its interval's grid (ticker_every, 1m): the newest ticker of
    a slot is kept, its exchange time in metadata.observed_at."""
    rest_ticker = recorded_ticker()
    closes = [1709461799999, 1709461800999, 1709461801999]
    frames = [ticker_frame(rest_ticker, c, f"{62031.41 + i:.2f}") for i, c in enumerate(closes)]
    frames.append(frames[-1])  # a repeat of the last update changes nothing
    sessions = {TICKER_STREAM: [Session(frames, pause_s=0.1)]}

    def done(conn):
        return conn.execute(sa.select(sa.func.max(MarketMetric.last_price))).scalar() == 62033.41

    run_capture(engine, rest.base_url, sessions, done, channels=("ticker",))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(MarketMetric).order_by(MarketMetric.time)).all()
    slots = [pd.Timestamp("2024-03-03 10:29", tz="UTC"), pd.Timestamp("2024-03-03 10:30", tz="UTC")]
    assert [r.time for r in rows] == slots
    assert [r.last_price for r in rows] == [62031.41, 62033.41]
    observed = [pd.Timestamp(closes[0], unit="ms", tz="UTC"), pd.Timestamp(closes[2], unit="ms", tz="UTC")]
    assert [r.metadata["observed_at"] for r in rows] == [t.isoformat() for t in observed]
    assert {r.interval for r in rows} == {"1m"} and {r.bid for r in rows} == {float(rest_ticker["bidPrice"])}


def test_a_hole_rest_cannot_fill_is_marked_unfilled_with_the_reason(engine, rest):
    """The exchange's REST history answers 503 (after the retry too): the hole stays, marked unfilled."""
    rest.fail_with["/api/v3/aggTrades"] = [503] * 10
    first = [trade_frame(t) for t in TRADES[:40]]
    second = [trade_frame(t) for t in TRADES[60:]]
    sessions = {TRADES_STREAM: [Session(first, drop=True), Session(second)]}

    def done(conn):
        return conn.execute(sa.select(CaptureGap.status)).scalars().all() == ["unfilled"]

    run_capture(engine, rest.base_url, sessions, done)
    with engine.connect() as conn:
        stored = stored_trades(conn)
        gap = conn.execute(sa.select(CaptureGap)).one()
        covered = covered_ranges(
            conn,
            SeriesKey("market_trades", "binance", "BTC/USDT"),
            pd.Timestamp(0, tz="UTC"),
            pd.Timestamp.max.tz_localize("UTC"),
        )
    missing = {str(t["a"]) for t in TRADES[40:60]}
    assert set(stored["trade_id"]) == {str(t["a"]) for t in TRADES} - missing
    assert (gap.status, gap.filled, gap.rows_filled) == ("unfilled", False, 0)
    assert "ExchangeNotAvailable" in gap.detail["error"]
    # The hole is not in the coverage ledger: the daily REST pull asks for it again.
    hole = (
        pd.Timestamp(TRADES[39]["T"], unit="ms", tz="UTC"),
        pd.Timestamp(TRADES[60]["T"], unit="ms", tz="UTC"),
    )
    assert all(hi <= hole[0] or lo >= hole[1] for lo, hi in covered)


def test_an_error_in_the_writer_process_arrives_with_its_class_and_verdict(engine):
    """What fails inside the writer process reaches the service as a `RemoteError` (a driver's exception may
    not unpickle): the original class and message, and `classify`'s verdict from the child, so a bug is
    not retried and its root cause is in the service's log."""
    from datetime import UTC, datetime

    from market_warehouse.resources.retry import RemoteError, classify
    from market_warehouse.resources.stream.writer import ProcessWriter

    async def write_once() -> None:
        writer = ProcessWriter(engine)
        try:
            now = datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
            await writer.write({"no_such_dataset": [{"time": 0}]}, source="t", run_id="r", now=now)
        finally:
            await writer.close()

    with pytest.raises(RemoteError) as err:
        asyncio.run(write_once())
    assert err.value.kind == "StructuralError" and "unknown dataset 'no_such_dataset'" in err.value.message
    assert not classify(err.value).transient and "not transient: StructuralError" in str(err.value)
