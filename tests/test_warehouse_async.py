"""The async storage API on asyncpg: same operations as the sync one, same results, over the same database.

Each test drives its coroutines with `asyncio.run` (no plugin needed). Writes go through `AsyncWarehouse`
and are read back through both classes: records must compare equal, which checks the shared mapping
(UTC normalization, Decimal money, JSON) across the two drivers.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from market_warehouse.resources.database import async_url
from market_warehouse.resources.models import SystemEvent
from market_warehouse.resources.schema import head_revision
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse
from market_warehouse.resources.warehouse.ops.common import NotFoundError
from market_warehouse.resources.warehouse.records import Candle, Trade
from tests.warehouse_data import KNOWN_TRADES, MINUTE, SERIES, T0, candle_frame

# Not operations on the database, or different by nature in the two classes.
SPECIAL = {"connect", "close", "session", "generate_correlation_id", "health"}


def public_methods(cls) -> dict[str, object]:
    return {n: getattr(cls, n) for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


def test_async_class_mirrors_every_sync_operation():
    sync, aio = public_methods(Warehouse), public_methods(AsyncWarehouse)
    assert set(sync) == set(aio)
    for name in set(sync) - SPECIAL:
        assert inspect.iscoroutinefunction(aio[name]), name
        assert inspect.signature(aio[name]) == inspect.signature(sync[name]), name
    assert inspect.iscoroutinefunction(AsyncWarehouse.health)
    assert inspect.iscoroutinefunction(AsyncWarehouse.close)


def test_unix_socket_url_and_its_port_reach_the_embedded_server(db_url):
    assert db_url.query["host"].startswith("/") and "port" in db_url.query
    converted = async_url(db_url)
    assert converted.drivername == "postgresql+asyncpg" and converted.query == db_url.query

    async def check(url):
        async with AsyncWarehouse(url) as awh:
            return await awh.health()

    health = asyncio.run(check(db_url))
    assert health.ok and health.backend == "postgres" and health.schema_revision == head_revision()
    # The port names the socket file (.s.PGSQL.<port>): a wrong one must fail, proving it is not ignored.
    wrong_port = db_url.update_query_dict({"port": "1"})
    health = asyncio.run(check(wrong_port))
    assert not health.ok and "1" in health.error


def test_every_operation_on_asyncpg_matches_the_sync_api(any_backend_url):
    sync = Warehouse(any_backend_url)

    async def scenario():
        async with AsyncWarehouse(any_backend_url) as awh:
            # OHLCV through the bulk upsert engine (in a worker thread)
            frame = candle_frame(180)
            first = await awh.insert_ohlcv(frame)
            assert (first.inserted, first.unchanged) == (180, 0)
            assert (await awh.insert_ohlcv([Candle(**r) for r in frame.to_dict("records")])).unchanged == 180
            start, end = T0 + 10 * MINUTE, T0 + 100 * MINUTE
            candles = await awh.get_ohlcv(*SERIES, start=start, end=end, limit=50)
            assert candles == sync.get_ohlcv(*SERIES, start=start, end=end, limit=50) and len(candles) == 50
            assert all(c.time.tzinfo is UTC for c in candles)
            got_frame = await awh.get_ohlcv_frame(*SERIES, start=start, end=end)
            assert got_frame.equals(sync.get_ohlcv_frame(*SERIES, start=start, end=end))
            assert await awh.get_latest_ohlcv(*SERIES) == sync.get_latest_ohlcv(*SERIES)
            assert await awh.get_latest_candles(*SERIES, limit=3) == sync.get_latest_candles(*SERIES, limit=3)
            stats = await awh.get_price_stats(*SERIES, lookback=timedelta(hours=1), end=end)
            assert stats == sync.get_price_stats(*SERIES, lookback=timedelta(hours=1), end=end)
            assert stats.count == 60
            profile = await awh.get_volume_profile(*SERIES, bins=7)
            assert profile == sync.get_volume_profile(*SERIES, bins=7) and len(profile) == 7

            with sync.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM ohlcv WHERE time = :t"), {"t": T0 + 42 * MINUTE})
            gaps = await awh.get_ohlcv_gaps(*SERIES, start=T0 - 2 * MINUTE, end=T0 + 180 * MINUTE)
            assert [(g.start, g.missing) for g in gaps] == [(T0 - 2 * MINUTE, 2), (T0 + 42 * MINUTE, 1)]

            # tape trades and order books
            trades = [Trade("binance", "BTC/USDT", str(i), T0 + i * MINUTE, 100.0 + i, 1.0) for i in range(4)]
            assert (await awh.insert_market_trades(trades)).inserted == 4
            assert await awh.get_market_trades("binance", "BTC/USDT", limit=3) == trades[:3]
            snap = await awh.insert_orderbook_snapshot("binance", "BTC/USDT", T0, [[99, 1]], [[101, 2]])
            assert (snap.mid_price, snap.bids) == (100.0, [[99.0, 1.0]])
            assert await awh.get_orderbook_snapshots("binance", "BTC/USDT") == [snap]
            assert await awh.get_latest_orderbook("binance", "BTC/USDT") == snap

            # agent decisions and signals
            decision = await awh.log_agent_decision("a1", "BTC/USDT", "buy", state={"x": 1}, time=T0)
            rewarded = await awh.update_agent_decision(decision.id, reward=0.5, outcome="win")
            assert (rewarded.reward, rewarded.state) == (0.5, {"x": 1})
            assert await awh.get_agent_decisions(agent_id="a1") == sync.get_agent_decisions(agent_id="a1")
            with pytest.raises(NotFoundError):
                await awh.update_agent_decision(123_456, reward=1.0)
            signal = await awh.insert_signal("s1", "BTC/USDT", "binance", "buy", time=T0)
            await awh.mark_signal_executed(signal.id, 100.0, executed_at=T0)
            closed_signal = await awh.close_signal(signal.id, 103.0, "3.5")
            assert closed_signal.realized_pnl == Decimal("3.5")
            assert await awh.get_signals(executed=True) == [closed_signal]
            assert await awh.get_signals(executed=False) == []
            (perf,) = await awh.get_strategy_performance()
            assert (perf.wins, perf.total_pnl, perf.win_rate) == (1, Decimal("3.5"), 1.0)

            # our fills and the trading loop's journal
            cid = awh.generate_correlation_id()
            fill = await awh.log_trade(
                "BTC/USDT", "binance", "buy", "0.5", "100.1", correlation_id=cid, executed_at=T0
            )
            assert (fill.quantity, fill.price, fill.correlation_id) == (Decimal("0.5"), Decimal("100.1"), cid)
            assert await awh.get_trade_history("BTC/USDT") == sync.get_trade_history("BTC/USDT") == [fill]
            assert isinstance(await awh.log_iteration(cid, 1, "fetch", "ok", 3.0), int)
            assert isinstance(await awh.log_audit_report(cid, "recon", "passed"), int)
            point = await awh.log_equity_snapshot("main", "1000.5", time=T0)
            assert await awh.get_equity_curve("main") == sync.get_equity_curve("main") == [point]
            risk = await awh.log_risk_metrics("main", time=T0, total_pnl="12.5", sharpe_ratio=1.2)
            assert await awh.get_risk_metrics("main") == [risk] and risk.total_pnl == Decimal("12.5")

            # bot trades, statistics, positions, events
            for side, entry, exit_, qty, fees in KNOWN_TRADES:
                trade = await awh.insert_bot_trade("BTC/USDT", "binance", side, entry, qty, entry_time=T0)
                await awh.close_bot_trade(trade.id, exit_, exit_time=T0 + MINUTE, fees=fees)
            stats = await awh.get_bot_trade_statistics()
            assert stats == sync.get_bot_trade_statistics()
            assert (stats.net_pnl, stats.win_rate, stats.gross_loss) == (Decimal("8.9"), 0.4, Decimal(15))
            updated = await awh.update_bot_trade(trade.id, exit_reason="manual")
            assert await awh.get_bot_trade(trade.id) == updated
            assert await awh.get_recent_bot_trades(limit=2) == sync.get_recent_bot_trades(limit=2)
            assert len(await awh.get_bot_trades_by_symbol("BTC/USDT")) == 5
            position = await awh.open_position("BTC/USDT", "binance", "short", "2", "100", opened_at=T0)
            marked = await awh.update_position(position.id, current_price="90")
            assert marked.unrealized_pnl == Decimal(20)
            assert await awh.get_open_positions() == [marked] == [await awh.get_position(position.id)]
            closed = await awh.close_position(position.id, "95")
            assert (closed.status, closed.realized_pnl) == ("closed", Decimal(10))
            event_id = await awh.log_event("error", "bot", "order_rejected", "insufficient margin")
            (event,) = await awh.get_recent_events(min_severity="warning")
            assert event.id == event_id and event == sync.get_recent_events(severity="error")[0]

            # administration
            sizes = {t.table_name: t for t in await awh.get_table_sizes()}
            assert sizes["ohlcv"].kind in ("partitioned", "hypertable")
            health = await awh.health()
            assert health.ok and health.schema_current and health.latency_ms > 0

    try:
        asyncio.run(scenario())
    finally:
        sync.close()


def test_async_session_commits_and_rolls_back(db_url):
    async def scenario():
        async with AsyncWarehouse(db_url) as awh:
            async with awh.session() as s:
                s.add(SystemEvent(severity="info", source="t", event_type="kept", message="m"))
            with pytest.raises(RuntimeError):
                async with awh.session() as s:
                    s.add(SystemEvent(severity="info", source="t", event_type="lost", message="m"))
                    await s.flush()
                    raise RuntimeError("boom")
            return [e.event_type for e in await awh.get_recent_events()]

    assert asyncio.run(scenario()) == ["kept"]


def test_concurrent_coroutines_share_the_pool_and_upserts_leave_the_loop_free(db_url):
    async def scenario():
        async with AsyncWarehouse(db_url) as awh:
            ticks = 0
            done = asyncio.Event()

            async def ticker():
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            ticking = asyncio.create_task(ticker())
            result = await awh.insert_ohlcv(candle_frame(20_000))
            done.set()
            await ticking
            reads = await asyncio.gather(
                *(awh.get_ohlcv(*SERIES, start=T0 + i * MINUTE, limit=10) for i in range(20))
            )
            return result, ticks, reads

    result, ticks, reads = asyncio.run(scenario())
    assert result.inserted == 20_000
    assert ticks > 0  # the event loop kept running while the upsert worked in its thread
    assert [r[0].time for r in reads] == [T0 + i * MINUTE for i in range(20)]


def test_async_warehouse_from_an_engine_leaves_it_to_the_caller(db_url):
    from sqlalchemy.ext.asyncio import create_async_engine

    async def scenario():
        engine = create_async_engine(async_url(db_url))
        awh = AsyncWarehouse(engine)
        await awh.insert_ohlcv(candle_frame(5))  # the bulk engine is derived from the same URL
        await awh.close()
        async with engine.connect() as conn:  # still usable: not disposed by the warehouse
            count = (await conn.execute(sa.text("SELECT count(*) FROM ohlcv"))).scalar_one()
        await engine.dispose()
        return count, repr(awh)

    count, text = asyncio.run(scenario())
    assert count == 5 and text.startswith("AsyncWarehouse(postgresql+asyncpg://")


def test_async_connect_uses_the_configured_warehouse(monkeypatch, db_url):
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))

    async def scenario():
        async with AsyncWarehouse.connect() as awh:
            return await awh.health(), awh.engine.url.database

    health, database = asyncio.run(scenario())
    assert health.ok and database == db_url.database


def test_naive_datetimes_are_refused(db_url):
    async def scenario():
        async with AsyncWarehouse(db_url) as awh:
            await awh.get_ohlcv(*SERIES, start=datetime(2024, 1, 1))

    with pytest.raises(ValueError, match="naive timestamp"):
        asyncio.run(scenario())
