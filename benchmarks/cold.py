"""Benchmark: the Parquet cold tier — export rate, bytes per row, and a month of 1m candles read from it.

    python benchmarks/cold.py                     # 2 series x 75 days of 1m candles (216,000 rows)
    DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres python benchmarks/cold.py   # TimescaleDB

In a scratch database on the configured server (dropped afterwards unless --keep): candles are built
server-side and aggregated; on TimescaleDB full the chunks older than 7 days are converted to the columnstore
(to compare with its compression). Then retention (`ohlcv: {1m: 35d}`) runs with a cold tier in a temporary
folder: rows exported per second (export, verification and drop together) and bytes per row in Parquet
against the dropped pieces' bytes per row in the database. Last, one series' 30 days of 1m candles are read
with `Warehouse.get_ohlcv_frame` from the cold tier (a range wholly exported) and from the database (the last 30 days),
--runs times each alternately. Every figure is measured in this process, in this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.aggregates import percentile  # noqa: E402
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
from market_warehouse.resources.maintenance.compression import compress_chunks  # noqa: E402
from market_warehouse.resources.maintenance.partitions import manage_partitions  # noqa: E402
from market_warehouse.resources.maintenance.plan import read_only  # noqa: E402
from market_warehouse.resources.maintenance.policy import parse_policy  # noqa: E402
from market_warehouse.resources.maintenance.retention import apply_retention, plan_retention  # noqa: E402
from market_warehouse.resources.maintenance.stats import collect_stats  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.warehouse.api import Warehouse  # noqa: E402

DAY = timedelta(days=1)


def fill(engine: sa.Engine, symbols: int, days: int, end: datetime) -> int:
    with engine.begin() as conn:
        conn.execute(
            bench_text("aggregates_fill"),
            {"symbols": symbols, "minutes": days * 1440, "start": end - days * DAY},
        )
    manage_partitions(engine, now=end)
    refresh_aggregates(engine)
    collect_stats(engine)
    return symbols * days * 1440


def timed_reads(
    engine: sa.Engine, ranges: dict[str, tuple[datetime, datetime]], runs: int
) -> dict[str, list]:
    """`Warehouse.get_ohlcv_frame` (the storage API: ADBC for the database part) over each range, alternately."""
    times: dict[str, list[float]] = {name: [] for name in ranges}
    rows: dict[str, int] = {}
    with Warehouse(engine) as wh:
        for _ in range(runs):
            for name, (start, end) in ranges.items():
                began = time.perf_counter()
                frame = wh.get_ohlcv_frame("bench", "S1/USDT", "1m", start, end)
                times[name].append(time.perf_counter() - began)
                rows[name] = len(frame)
    print(f"  rows read: {rows}")
    return times


def run(database: str, symbols: int, days: int, runs: int, keep: bool) -> None:
    url = server_url().set(database=database)
    drop_database(url)
    ensure_database(url)
    engine = create_engine(url)
    folder = Path(tempfile.mkdtemp(prefix="mw-bench-cold-"))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            caps = detect(conn)
        print(f"server: {redact(url)}  backend: {caps.backend.value} (PostgreSQL {caps.server_version})")
        end = floor_to(datetime.now(UTC), DAY)
        print(f"{fill(engine, symbols, days, end):,} one-minute candles ({symbols} series x {days} days)")
        policy = parse_policy({"retention": {"ohlcv": {"1m": "35d"}}, "cold": str(folder)})
        with read_only(engine) as conn:
            raw = plan_retention(conn, caps, policy, end)
        raw_bytes, raw_rows = sum(d.bytes or 0 for d in raw), sum(d.rows or 0 for d in raw)
        compressed = None
        if caps.compression:
            compress_chunks(engine, parse_policy({"compression": {"after": "7d"}}), now=end, caps=caps)
            with read_only(engine) as conn:
                compressed = sum(d.bytes or 0 for d in plan_retention(conn, caps, policy, end))

        result = apply_retention(engine, policy, now=end, caps=caps)
        exported = sum(int(a.exported.get("rows", 0)) for a in result.removed)
        parquet = sum(int(a.exported.get("bytes", 0)) for a in result.removed)
        assert exported == raw_rows, (exported, raw_rows)
        print(f"\nretention with a cold tier ({caps.backend.value}): {len(result.removed)} pieces\n")
        print("| measure | value |")
        print("|---|---:|")
        print(f"| rows exported then dropped | {exported:,} |")
        print(f"| seconds (export + verify + drop) | {result.seconds:.2f} |")
        print(f"| rows/s | {exported / result.seconds:,.0f} |")
        print(f"| bytes/row, Parquet zstd | {parquet / exported:.1f} |")
        print(f"| bytes/row, database (heap + indexes) | {raw_bytes / raw_rows:.1f} |")
        if compressed is not None:
            print(f"| bytes/row, TimescaleDB columnstore | {compressed / raw_rows:.1f} |")

        ranges = {
            "cold": (end - (days - 1) * DAY, end - (days - 31) * DAY),
            "database": (end - 30 * DAY, end),
        }
        times = timed_reads(engine, ranges, runs)
        print(f"\none series, 30 days of 1m candles with Warehouse.get_ohlcv_frame, {runs} runs each:\n")
        print("| tier | p50 ms | p95 ms |")
        print("|---|---:|---:|")
        for name, values in times.items():
            print(f"| {name} | {percentile(values, 0.5) * 1e3:.1f} | {percentile(values, 0.95) * 1e3:.1f} |")
    finally:
        engine.dispose()
        if not keep:
            drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2, help="series of 1m candles (default 2)")
    parser.add_argument("--days", type=int, default=75, help="days of candles per series (default 75)")
    parser.add_argument("--runs", type=int, default=10, help="timed reads per tier (default 10)")
    parser.add_argument("--database", default="mw_bench_cold", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if not args.database.startswith("mw_bench"):
        parser.error("--database must start with mw_bench: it is dropped and re-created")
    if args.days < 70:
        parser.error("--days must be at least 70 (a month must lie wholly in each tier)")
    run(args.database, args.symbols, args.days, args.runs, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
