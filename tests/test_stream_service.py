"""`market-warehouse stream` as a user runs it: a subprocess capturing the local Binance until SIGTERM.

The micro-batch limits are set so high that nothing is flushed while it runs: every stored trade was written
by the flush SIGTERM triggers, and the streams are left `stopped`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from market_warehouse.resources.models import MarketTrade, StreamState
from tests.fixtures.exchanges.replay import BinanceReplay
from tests.stream_data import TRADES_STREAM, BinanceWsReplay, Session, recorded_agg_trades, trade_frame

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


class ServerThread:
    """The websocket replay in a thread of its own (the service runs in another process)."""

    def __init__(self, sessions) -> None:
        self.replay = BinanceWsReplay(sessions)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main():
            self.stop = asyncio.Event()
            async with self.replay:
                self.ready.set()
                await self.stop.wait()

        self.loop.run_until_complete(main())

    def __enter__(self) -> BinanceWsReplay:
        self.thread.start()
        self.ready.wait(10)
        return self.replay

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def test_sigterm_flushes_what_the_service_holds_and_stops_the_streams(engine, db_url, httpserver, tmp_path):
    trades = recorded_agg_trades()
    rest = BinanceReplay(httpserver)
    with ServerThread({TRADES_STREAM: [Session([trade_frame(t) for t in trades])]}) as ws:
        universe = tmp_path / "universe.yaml"
        universe.write_text(
            f"""
exchanges:
  binance:
    driver: binance
    symbols: [BTC/USDT]
    intervals: [1h]
    options: {{fetchMarkets: {{types: [spot]}}}}
    urls:
      public: {rest.base_url}/api/v3
      ws: {{spot: {ws.base_url}/ws}}
    stream:
      channels: [trades]
      flush_ms: 600000
      flush_rows: 1000000
"""
        )
        env = {
            **os.environ,
            "DATABASE_URL": db_url.render_as_string(hide_password=False),
            "MW_UNIVERSE": str(universe),
        }
        service = subprocess.Popen(
            [str(BIN / "market-warehouse"), "stream"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while ws.subscriptions[TRADES_STREAM] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.0)  # the session's frames are played 50 ms after the subscription
            with engine.connect() as conn:
                before = conn.execute(sa.select(sa.func.count()).select_from(MarketTrade)).scalar()
            service.send_signal(signal.SIGTERM)
            output, _ = service.communicate(timeout=60)
        finally:
            if service.poll() is None:
                service.kill()
    assert service.returncode == 0, output
    assert before == 0  # nothing was flushed before the signal
    with engine.connect() as conn:
        ids = conn.execute(sa.select(MarketTrade.trade_id)).scalars().all()
        status = conn.execute(sa.select(StreamState.status, StreamState.rows_total)).one()
    assert sorted(ids) == sorted(str(t["a"]) for t in trades)
    assert tuple(status) == ("stopped", len(trades))
    assert f"stream: stopped after {len(trades)} rows (0 quarantined)" in output
