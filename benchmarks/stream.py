"""Live capture throughput and latency: the capture service against a bare ccxt.pro consumer, in one run.

    python benchmarks/stream.py                          # 1,000 .. 20,000 trades/s, 3 s each
    python benchmarks/stream.py --rates 5000 --seconds 5

A local websocket server (tests/stream_data.py) plays Binance `aggTrade` frames in the real wire format at
each rate; ccxt.pro's binance is pointed at it (REST `exchangeInfo` from the recorded fixture). At each rate:

- bare: a ccxt.pro consumer that only parses (`watch_trades`, nothing else): the ceiling of this machine;
- capture: `resources.stream.service.CaptureService` (dedupe, micro-batches, `load_frame`: validation,
  quarantine, upsert into `market_trades`, heartbeats, coverage) into a scratch database on the configured
  server (embedded PostgreSQL by default, or DATABASE_URL's server).

Both are fed the same number of frames at the same rate by the same kind of server process, one after
the other. Printed per rate: sustained messages/s of each (messages / (last one handled - first one sent)),
the ratio, the capture's arrival -> committed latency p50/p99 (arrival: when ccxt.pro handed the trade to
the service; committed: when its micro-batch's transaction returned), the CPU seconds each consumer's own
process used (the capture's writer process and PostgreSQL not included) and the 1-minute load average
after the rate (the machine is shared: figures mean little without it). Each capture starts with no
`stream_state` of an earlier run, so it does not back-fill a 'restart' hole over REST while measured.
Goal (issue 15): capture >= 0.8x the bare consumer, p99 <= 1 s at 5,000 trades/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_httpserver import HTTPServer  # noqa: E402

from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.exchanges.universe import ExchangeConfig  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.stream.config import parse_stream  # noqa: E402
from market_warehouse.resources.stream.service import CaptureService, build_stream_exchange  # noqa: E402
from market_warehouse.resources.stream.writer import WRITERS  # noqa: E402
from tests.fixtures.exchanges.replay import BinanceReplay  # noqa: E402
from tests.stream_data import TRADES_STREAM, BinanceWsReplay, Session  # noqa: E402

TICK_S = 0.01  # the server sends each 10 ms what the rate asks for


class PacedReplay(BinanceWsReplay):
    """Plays each session at `rate` frames per second, in 10 ms ticks; puts the wall time of the first frame
    on `report` (the server runs in a process of its own, so it does not share the consumer's GIL)."""

    rate: float = 1000.0
    report: Any = None

    async def _play(self, ws, session: Session) -> None:  # type: ignore[override]
        await asyncio.sleep(0.05)
        per_tick = max(1, round(self.rate * TICK_S))
        started = time.perf_counter()
        self.report.put(time.time())
        for index in range(0, len(session.frames), per_tick):
            for frame in session.frames[index : index + per_tick]:
                await ws.send(frame)
            due = started + (index + per_tick) / self.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))


def _serve(batch: list[str], rate: float, report: Any, stop: Any) -> None:
    """The websocket server process: its port, then (when the first frame goes out) the start time."""

    async def main() -> None:
        async with PacedReplay({TRADES_STREAM: [Session(batch)]}) as ws:
            ws.rate, ws.report = rate, report
            report.put(ws.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


@contextlib.contextmanager
def server_process(batch: list[str], rate: float) -> Iterator[tuple[str, Any]]:
    """(websocket base URL, queue that yields the wall time of the first frame) of a server process."""
    context = multiprocessing.get_context("spawn")
    report, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(batch, rate, report, stop), daemon=True)
    process.start()
    try:
        port = report.get(timeout=60)
        yield f"ws://127.0.0.1:{port}/stream", report
    finally:
        stop.set()
        process.join(10)


def frames(count: int, first_id: int, rate: float) -> list[str]:
    """`count` aggTrade frames with exchange times one 1/rate apart from now on (so lag means something)."""
    start_ms = int(time.time() * 1000) + 500
    out = []
    for i in range(count):
        stamp = start_ms + int(i * 1000 / rate)
        trade = {
            "e": "aggTrade", "E": stamp + 2, "s": "BTCUSDT", "a": first_id + i, "p": f"{62000 + (i % 100) / 10:.2f}",
            "q": "0.01000000", "f": first_id + i, "l": first_id + i, "T": stamp, "m": i % 2 == 0, "M": True,
        }  # fmt: skip
        out.append(json.dumps(trade))
    return out


def config(flush_ms: int, flush_rows: int):
    exchange = ExchangeConfig(
        name="binance",
        driver="binance",
        symbols=("BTC/USDT",),
        intervals=("1m",),
        options={"fetchMarkets": {"types": ["spot"]}},
        stream={"channels": ["trades"], "flush_ms": flush_ms, "flush_rows": flush_rows, "log_every_s": 3600},
    )
    return parse_stream(exchange, "benchmarks/stream.py")


async def bare(rest_url: str, batch: list[str], rate: float, cfg) -> float:
    """A consumer that only parses: messages/s from the first frame sent to the last trade parsed."""
    last_id = json.loads(batch[-1])["a"]
    with server_process(batch, rate) as (ws_url, report):
        exchange = build_stream_exchange(cfg, api_base_url=rest_url, ws_base_url=ws_url)
        watcher = None
        try:
            await exchange.load_markets()

            async def consume() -> None:
                while True:
                    await exchange.watch_trades("BTC/USDT", params={"name": "aggTrade"})

            watcher = asyncio.create_task(consume())
            # ccxt.pro parses every message as it arrives (into exchange.trades), whether or not a watch is
            # waiting: the last trade is parsed when it is the newest entry of that cache.
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline:
                cache = (exchange.trades or {}).get("BTC/USDT")
                if cache and str(cache[-1]["id"]) == str(last_id):
                    break
                await asyncio.sleep(0.001)
            return len(batch) / (time.time() - report.get(timeout=10))
        finally:
            if watcher is not None:
                watcher.cancel()
            await exchange.close()


async def capture(
    engine: sa.Engine, rest_url: str, batch: list[str], rate: float, cfg, writer: str
) -> tuple[float, np.ndarray]:
    """The capture service: messages/s from the first frame sent to the last row committed; latencies."""
    with engine.begin() as conn:  # a fresh start, not a restart whose hole is back-filled while measured
        conn.execute(sa.text("TRUNCATE stream_state, capture_gaps"))
    with server_process(batch, rate) as (ws_url, report):
        service = CaptureService(cfg, engine, api_base_url=rest_url, ws_base_url=ws_url, writer=writer)
        await service.exchange.load_markets()
        stop = asyncio.Event()
        runner = asyncio.create_task(service.run(stop))
        deadline = time.perf_counter() + 60
        while service.stats.rows < len(batch) and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        elapsed = time.time() - report.get(timeout=10)
        stop.set()
        stats = await runner
    latencies = np.concatenate(stats.latencies_ms) if stats.latencies_ms else np.array([np.nan])
    return min(stats.rows, len(batch)) / elapsed, latencies


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2500,5000,10000,20000", help="trades/s, comma separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each burst")
    parser.add_argument("--flush-ms", type=int, default=250, help="stream.flush_ms of the capture")
    parser.add_argument("--flush-rows", type=int, default=5000, help="stream.flush_rows of the capture")
    parser.add_argument("--writer", default="process", choices=WRITERS, help="where the capture writes")
    parser.add_argument("--database", default="mw_bench_stream", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    url = server_url(database=args.database)
    engine = create_engine(url)
    rest = HTTPServer()
    rest.start()
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE market_trades, stream_state, capture_gaps, coverage"))
        replay = BinanceReplay(rest)
        cfg = config(args.flush_ms, args.flush_rows)
        print(
            f"server: {redact(url)}, {os.cpu_count()} CPUs; capture flush_ms={args.flush_ms}, "
            f"flush_rows={args.flush_rows}, writer={args.writer}; load average {_load()} before"
        )
        print(
            "| offered trades/s | bare ccxt.pro msgs/s | capture msgs/s | capture / bare "
            "| arrival->commit p50 ms | p99 ms | CPU s bare / capture | load avg |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        next_id = 1
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            batch = frames(count, next_id, rate)
            cpu = time.process_time()
            bare_rate = asyncio.run(bare(replay.base_url, batch, rate, cfg))
            cpu_bare = time.process_time() - cpu
            next_id += count
            batch = frames(count, next_id, rate)
            cpu = time.process_time()
            rate_c, latencies = asyncio.run(capture(engine, replay.base_url, batch, rate, cfg, args.writer))
            cpu_capture = time.process_time() - cpu
            next_id += count
            p50, p99 = np.nanpercentile(latencies, [50, 99])
            print(
                f"| {rate:,.0f} | {bare_rate:,.0f} | {rate_c:,.0f} | {rate_c / bare_rate:.2f} | {p50:,.0f} "
                f"| {p99:,.0f} | {cpu_bare:.2f} / {cpu_capture:.2f} | {_load()} |"
            )
    finally:
        rest.stop()
        engine.dispose()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
