"""Benchmark: 30-day price statistics from the 1h aggregate against the raw 1m candles.

    python benchmarks/aggregates.py                       # 10 series x 60 days of 1m candles (864,000 rows)
    python benchmarks/aggregates.py --symbols 4 --days 45 --runs 50
    DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres python benchmarks/aggregates.py  # TimescaleDB

In a scratch database on the configured server (embedded PostgreSQL by default; dropped afterwards unless
--keep): the candles are built server-side, moved into their partitions, and the aggregates refreshed
from the dirty-window log (timed: the first full refresh, then an incremental one after a one-candle
correction). Then, alternately, `common/price_stats` (count, mean, std, min, max and latest close of one
series over 30 days of 1m candles: the storage API's query, the baseline) and `common/price_stats_aggregate`
(the same over `ohlcv_1h`) run --runs times each; p50/p95 latencies and the ratio are printed as a
markdown table. Every figure is measured in this process, in this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_text  # noqa: E402
from market_warehouse.resources.backend import detect  # noqa: E402
from market_warehouse.resources.database import (  # noqa: E402
    create_engine,
    drop_database,
    ensure_database,
    redact,
    server_url,
)
from market_warehouse.resources.maintenance.aggregates import floor_to, refresh_aggregates  # noqa: E402
from market_warehouse.resources.maintenance.partitions import manage_partitions  # noqa: E402
from market_warehouse.resources.maintenance.stats import collect_stats  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.sqlfiles import sql_text  # noqa: E402
from market_warehouse.resources.warehouse import upsert_dataframe  # noqa: E402
from market_warehouse.resources.warehouse.aggregates import aggregate_query  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill(engine: sa.Engine, symbols: int, days: int, end: datetime) -> tuple[int, float]:
    start = end - timedelta(days=days)
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            bench_text("aggregates_fill"),
            {"symbols": symbols, "minutes": days * 1440, "start": start},
        )
    manage_partitions(engine, now=end)  # plain PostgreSQL: rows out of DEFAULT into their partitions
    collect_stats(engine)  # ANALYZE
    return symbols * days * 1440, time.perf_counter() - began


def timed_queries(engine: sa.Engine, params: dict, runs: int) -> dict[str, list[float]]:
    raw = sql_text("common/price_stats")
    agg = aggregate_query("1h", "common/price_stats_aggregate")
    times: dict[str, list[float]] = {"raw": [], "agg": []}
    with engine.connect() as conn:
        rows = {
            "raw": conn.execute(raw, {**params, "interval": "1m"}).mappings().one(),
            "agg": conn.execute(agg, params).mappings().one(),
        }
        for _ in range(runs):  # alternate, so both see the same cache and load
            for name, stmt, extra in (("raw", raw, {"interval": "1m"}), ("agg", agg, {})):
                began = time.perf_counter()
                conn.execute(stmt, {**params, **extra}).mappings().one()
                times[name].append(time.perf_counter() - began)
    for name, row in rows.items():
        print(
            f"  {name}: count={row['count']:,} mean={row['mean']:.4f} std={row['std']:.4f} "
            f"min={row['min']:.4f} max={row['max']:.4f} current={row['current']:.4f}"
        )
    return times


def run(database: str, symbols: int, days: int, runs: int, keep: bool) -> None:
    # server_url() keeps DATABASE_URL's own database name: the scratch database is named explicitly here.
    url = server_url().set(database=database)
    drop_database(url)  # a database kept by an earlier --keep run: start from scratch
    ensure_database(url)
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            caps = detect(conn)
        print(f"server: {redact(url)}  backend: {caps.backend.value} (PostgreSQL {caps.server_version})")
        end = floor_to(datetime.now(UTC), timedelta(days=1))
        rows, fill_s = fill(engine, symbols, days, end)
        print(f"{rows:,} one-minute candles ({symbols} series x {days} days) built in {fill_s:.1f} s")

        full = refresh_aggregates(engine, caps)
        print(f"full refresh ({full.mode}): {full.dirty_hours:,} dirty hours in {full.seconds:.2f} s")
        fix = pd.DataFrame(
            {
                "exchange": ["bench"],
                "symbol": ["S1/USDT"],
                "interval": ["1m"],
                "time": [end - timedelta(days=2, minutes=30)],
                "open": [101.0],
                "high": [102.0],
                "low": [100.5],
                "close": [101.5],
                "volume": [3.0],
            }
        )
        upsert_dataframe(engine, "ohlcv", fix)
        incremental = refresh_aggregates(engine, caps)
        print(
            f"incremental refresh after a one-candle correction: {incremental.dirty_hours} dirty hour in "
            f"{incremental.seconds * 1000:.1f} ms"
        )

        params = {
            "exchange": "bench",
            "symbol": "S1/USDT",
            "price": "trade",
            "start": end - timedelta(days=30),
            "end": end,
        }
        times = timed_queries(engine, params, runs)
        raw_p50, raw_p95 = percentile(times["raw"], 0.5), percentile(times["raw"], 0.95)
        agg_p50, agg_p95 = percentile(times["agg"], 0.5), percentile(times["agg"], 0.95)
        print(f"\n30-day price stats of one series, {runs} runs each ({caps.backend.value}):\n")
        print("| source | rows read | p50 ms | p95 ms | speed-up (p50) |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| raw 1m candles (`common/price_stats`, baseline) | {30 * 1440:,} | {raw_p50 * 1e3:.2f} | {raw_p95 * 1e3:.2f} | 1.0x |"
        )
        print(
            f"| `ohlcv_1h` aggregate (`common/price_stats_aggregate`) | {30 * 24:,} | {agg_p50 * 1e3:.2f} | "
            f"{agg_p95 * 1e3:.2f} | {raw_p50 / agg_p50:.1f}x |"
        )
        print(f"\n(mean of all runs: raw {statistics.mean(times['raw']) * 1e3:.2f} ms, aggregate "
              f"{statistics.mean(times['agg']) * 1e3:.2f} ms)")  # fmt: skip
    finally:
        engine.dispose()
        if not keep:
            drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10, help="series of 1m candles (default 10)")
    parser.add_argument("--days", type=int, default=60, help="days of candles per series (default 60)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query (default 30)")
    parser.add_argument("--database", default="mw_bench_aggregates", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if not args.database.startswith("mw_bench"):
        parser.error("--database must start with mw_bench: it is dropped and re-created")
    if args.days < 31:
        parser.error("--days must be at least 31 (the statistics cover 30 days)")
    run(args.database, args.symbols, args.days, args.runs, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
