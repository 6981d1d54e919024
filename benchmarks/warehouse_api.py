"""Benchmark of the storage API's reads: the gap report (lead() vs a generated grid), sync vs async latency.

    python benchmarks/warehouse_api.py                 # one year of 1m candles (525,600 minutes)
    python benchmarks/warehouse_api.py --days 30 --queries 100

Runs in a scratch database (dropped afterwards unless --keep) on the configured server: the embedded
PostgreSQL by default, or the server of DATABASE_URL. Every figure is measured in this process, on this
server, in this run; ratios are against the baseline measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_text  # noqa: E402
from market_warehouse.resources.backend import detect  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.models import TIMESERIES  # noqa: E402
from market_warehouse.resources.partitioning import ensure_partitions  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.warehouse.api import Warehouse  # noqa: E402
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
SERIES = ("bench", "GAP/USDT", "1m")
HOLE_EVERY, HOLE_LEN = 1000, 3  # 3 missing candles every 1,000 minutes
WARM_UP = 5


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    p95 = statistics.quantiles(samples_ms, n=20)[18] if len(samples_ms) > 1 else samples_ms[0]
    return statistics.median(samples_ms), p95


async def elapsed_ms(call: Callable[[], object | Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    out = call()
    if inspect.isawaitable(out):
        out = await out
    return (time.perf_counter() - started) * 1000, out


async def interleaved(calls: dict[str, Callable[[int], object]], runs: int) -> dict[str, tuple[list, object]]:
    """Time the compared calls in turn, run after run, so a change of machine load hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    outputs: dict[str, object] = {}
    for i in range(runs + WARM_UP):
        for name, call in calls.items():
            ms, outputs[name] = await elapsed_ms(lambda call=call, i=i: call(i))
            if i >= WARM_UP:
                samples[name].append(ms)
    return {name: (samples[name], outputs[name]) for name in calls}


def build(engine: sa.Engine, minutes: int) -> int:
    with engine.begin() as conn:
        ensure_partitions(conn, detect(conn), TIMESERIES["ohlcv"], START, START + timedelta(minutes=minutes))
        params = {"start": START, "minutes": minutes, "hole_every": HOLE_EVERY, "hole_len": HOLE_LEN}
        rows = conn.execute(bench_text("warehouse_fill"), params).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE ohlcv")
    return rows


async def gap_report(wh: Warehouse, minutes: int, runs: int) -> list[tuple[str, float, float, str]]:
    end = START + timedelta(minutes=minutes)
    params = {"exchange": SERIES[0], "symbol": SERIES[1], "interval": SERIES[2], "price": "trade"}
    params |= {"start": START, "end": end, "step": timedelta(minutes=1)}
    baseline = bench_text("warehouse_gaps_generate_series")

    def generated_grid(_):
        with wh.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(baseline, params)]

    def lead(_):
        return [(g.start, g.end, g.missing) for g in wh.get_ohlcv_gaps(*SERIES, start=START, end=end)]

    out = await interleaved({"grid": generated_grid, "lead": lead}, runs)
    (grid_ms, grid), (lead_ms, gaps) = out["grid"], out["lead"]
    assert gaps == grid, "the two methods disagree"
    note = f"{len(gaps):,} gaps, {sum(g[2] for g in gaps):,} missing candles"
    return [
        ("gaps: generate_series grid + anti-join (baseline)", *percentiles(grid_ms), note),
        ("gaps: lead(time) over stored candles (get_ohlcv_gaps)", *percentiles(lead_ms), note),
    ]


async def latency_rows(url, wh: Warehouse, minutes: int, queries: int) -> list[tuple[str, float, float, str]]:
    """p50/p95 per call of the same calls through Warehouse (psycopg2) and AsyncWarehouse (asyncpg)."""
    starts = [START + timedelta(minutes=(i * 7919) % (minutes - 2000)) for i in range(queries + WARM_UP)]
    calls = {
        "get_ohlcv (1,000 rows)": lambda api, i: api.get_ohlcv(*SERIES, start=starts[i], limit=1000),
        "get_ohlcv_frame (1,000 rows)": lambda api, i: api.get_ohlcv_frame(
            *SERIES, start=starts[i], limit=1000
        ),
        "get_latest_ohlcv": lambda api, i: api.get_latest_ohlcv(*SERIES),
        "get_price_stats (24h of 1m)": lambda api, i: api.get_price_stats(
            *SERIES, lookback=timedelta(days=1), end=starts[i] + timedelta(days=1)
        ),
    }
    results = []
    async with AsyncWarehouse(url) as awh:
        for name, call in calls.items():
            pair = {
                "sync (psycopg2)": lambda i, call=call: call(wh, i),
                "async (asyncpg)": lambda i, call=call: call(awh, i),
            }
            out = await interleaved(pair, queries)
            (sync_ms, sync_out), (async_ms, async_out) = out.values()
            same = sync_out.equals(async_out) if hasattr(sync_out, "equals") else sync_out == async_out
            assert same, f"{name}: sync and async results differ"
            results.append((f"{name}, sync (psycopg2)", *percentiles(sync_ms), ""))
            results.append((f"{name}, async (asyncpg)", *percentiles(async_ms), ""))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="length of the 1m series (default 365 days)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each gap query")
    parser.add_argument("--queries", type=int, default=200, help="timed calls per latency row")
    parser.add_argument("--database", default="mw_bench_api", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    url = server_url(database=args.database)
    engine = create_engine(url)
    minutes = args.days * 24 * 60
    try:
        upgrade(engine)
        with engine.connect() as conn:
            caps = detect(conn)
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        print(f"server: {redact(url)} — PostgreSQL {version}, backend {caps.backend.value}")
        started = time.perf_counter()
        rows = build(engine, minutes)
        print(
            f"series: {rows:,} candles over {args.days} days, built in {time.perf_counter() - started:.1f} s"
        )
        wh = Warehouse(engine)
        rows_out = asyncio.run(gap_report(wh, minutes, args.runs))
        rows_out += asyncio.run(latency_rows(url, wh, minutes, args.queries))
        baseline = rows_out[0][1]
        print()
        print("| operation | p50 ms | p95 ms | speed-up vs gap baseline (p50) | note |")
        print("|---|---:|---:|---:|---|")
        for name, p50, p95, note in rows_out:
            ratio = f"{baseline / p50:.1f}x" if name.startswith("gaps") else ""
            print(f"| {name} | {p50:.2f} | {p95:.2f} | {ratio} | {note} |")
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
