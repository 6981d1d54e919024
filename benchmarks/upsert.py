"""Benchmark of the bulk upsert against raw COPY, pandas `to_sql` and row-by-row inserts, in one run.

    python benchmarks/upsert.py                    # 1M candles, get_ohlcv on a 10M-row table
    python benchmarks/upsert.py --rows 200000 --read-rows 0

Runs in a scratch database (dropped afterwards unless --keep) on the configured server: the embedded
PostgreSQL by default, or the server of DATABASE_URL. Every figure is measured in this process, on this
server, in this run; ratios are against the raw COPY measured here, never against remembered numbers.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg2 import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_sql, bench_text  # noqa: E402
from market_warehouse.resources.backend import detect  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.models import TIMESERIES  # noqa: E402
from market_warehouse.resources.partitioning import ensure_partitions  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.sqlfiles import load_sql, sql_text  # noqa: E402
from market_warehouse.resources.warehouse.upsert import (  # noqa: E402
    _binary_copy_payload,
    _load_order,
    _table_meta,
    _upsert_validated,
    upsert_dataframe,
    validate_frame,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = 10


def candles(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` one-minute OHLCV candles over SYMBOLS symbols, minute-major like a live feed.

    The price kind (part of ohlcv's key since migration 0005) is given explicitly, as the exchange pulls
    (`ohlcv_frame`) give it, so the upsert is timed on the frames its main callers pass (no key-default fill).
    """
    rng = np.random.default_rng(seed)
    minutes = -(-rows // SYMBOLS)
    times = pd.date_range(START, periods=minutes, freq="min", tz="UTC")
    close = 100 + rng.standard_normal((minutes, SYMBOLS)).cumsum(axis=0)
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": np.tile([f"SYM{i}/USDT" for i in range(SYMBOLS)], minutes),
            "interval": "1m",
            "price": "trade",
            "time": np.repeat(times, SYMBOLS),
            "open": (close + rng.random(close.shape)).ravel(),
            "high": (close + 2).ravel(),
            "low": (close - 2).ravel(),
            "close": close.ravel(),
            "volume": rng.random(minutes * SYMBOLS) * 50,
            "trades_count": rng.integers(0, 5000, minutes * SYMBOLS),
            "quality_score": (rng.random(minutes * SYMBOLS) * 100).astype("float32"),
        }
    )
    return frame.iloc[:rows].reset_index(drop=True)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


class Report:
    """Rows of the result table; each method's time is the median of its repeats."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}
        self.meta: dict[str, tuple[int, str]] = {}

    def add(self, method: str, rows: int, seconds: float, note: str = "") -> None:
        self.runs.setdefault(method, []).append(seconds)
        self.meta[method] = (rows, note)
        print(
            f"  {method}: {rows:,} rows in {seconds:.3f} s = {rows / seconds:,.0f} rows/s {note}", flush=True
        )

    def rate(self, method: str) -> float:
        return self.meta[method][0] / statistics.median(self.runs[method])

    def table(self) -> str:
        lines = [
            "| method | rows | seconds (median) | rows/s | vs raw COPY | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        baseline = None
        for method, runs in self.runs.items():
            rows, note = self.meta[method]
            seconds = statistics.median(runs)
            rate = rows / seconds
            baseline = baseline or rate
            lines.append(
                f"| {method} | {rows:,} | {seconds:.2f} | {rate:,.0f} | {rate / baseline:.2f}x | {note} |"
            )
        return "\n".join(lines)


def copy_bytes(conn: sa.Connection, table: pgsql.Composable, columns: list[str], fmt: str, payload) -> None:
    dbapi = conn.connection.dbapi_connection
    statement = pgsql.SQL(bench_sql("upsert_copy")).format(
        table=table,
        columns=pgsql.SQL(", ").join(map(pgsql.Identifier, columns)),
        format=pgsql.SQL(fmt),
    )
    with dbapi.cursor() as cursor:
        cursor.copy_expert(statement.as_string(dbapi), io.BytesIO(payload), size=1 << 20)


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(bench_text("upsert_truncate"))


def prepare_partitions(engine: sa.Engine, start: datetime, end: datetime) -> None:
    with engine.begin() as conn:
        ensure_partitions(conn, detect(conn), TIMESERIES["ohlcv"], start, end)


def serialization(engine: sa.Engine, frame: pd.DataFrame, csv_sample: int) -> None:
    """Encode + COPY into a staging table, per format: why the upsert uses pgpq's binary COPY."""
    meta = _table_meta("ohlcv")
    valid = validate_frame("ohlcv", frame)
    columns = list(valid.columns)
    stage = pgsql.Identifier("pg_temp", "bench_stage")
    target = pgsql.Identifier("ohlcv")

    def to_copy(fmt: str, payload: bytes) -> float:
        with engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            create = pgsql.SQL(load_sql("common/upsert_staging_create")).format(stage=stage, target=target)
            conn.exec_driver_sql(create.as_string(dbapi))
            seconds, _ = timed(lambda: copy_bytes(conn, stage, columns, fmt, payload))
        return seconds

    def arrow_csv() -> bytes:
        table = pa.Table.from_pandas(valid, preserve_index=False)
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
        return sink.getvalue()

    print("serialization (encode in Python + COPY into a temp staging table):")
    results = []
    for name, fmt, encode, rows in [
        ("pgpq binary", "binary", lambda: _binary_copy_payload(meta, valid), len(valid)),
        ("pyarrow CSV", "csv", arrow_csv, len(valid)),
        (
            "DataFrame.to_csv",
            "csv",
            lambda: valid.iloc[:csv_sample].to_csv(index=False, header=False).encode(),
            min(csv_sample, len(valid)),
        ),
    ]:
        encode_s, payload = timed(encode)
        copy_s = to_copy(fmt, payload)
        results.append((name, rows, encode_s, copy_s, len(payload)))
        print(
            f"  {name}: {rows:,} rows, encode {encode_s:.3f} s ({rows / encode_s:,.0f} rows/s), "
            f"COPY {copy_s:.3f} s ({rows / copy_s:,.0f} rows/s), {len(payload) / rows:.0f} bytes/row",
            flush=True,
        )
    return results


def merge_paths(
    engine: sa.Engine, frame: pd.DataFrame, rows: int, repeats: int
) -> list[tuple[str, float, float]]:
    """One batch through each write path: why new ranges are COPYed and the merge avoids ON CONFLICT."""
    meta = _table_meta("ohlcv")
    batch = _load_order(meta, validate_frame("ohlcv", frame.iloc[:rows]))
    changed = batch.copy()
    changed.loc[changed.index[::10], "close"] += 0.25
    out = []
    print(f"write paths, one batch of {len(batch):,} rows (new rows / 10 % changed):")
    for name, strategy, direct in [
        ("direct COPY (new ranges)", None, True),
        ("UPDATE … FROM + INSERT … WHERE NOT EXISTS", "join", False),
        ("INSERT … ON CONFLICT DO UPDATE … WHERE", "on_conflict", False),
    ]:
        new_runs, changed_runs = [], []
        for _ in range(repeats):
            truncate(engine)
            for data, runs in (
                ((batch, new_runs), (changed, changed_runs)) if not direct else ((batch, new_runs),)
            ):
                started = time.perf_counter()
                with engine.begin() as conn:  # timed with its commit
                    _upsert_validated(conn, meta, data, None, strategy=strategy or "join", direct=direct)
                runs.append(time.perf_counter() - started)
        new_s = statistics.median(new_runs)
        changed_s = statistics.median(changed_runs) if changed_runs else float("nan")
        out.append((name, new_s, changed_s))
        print(
            f"  {name}: new {new_s:.3f} s, 10 % changed {changed_s:.3f} s (medians of {repeats})", flush=True
        )
    return out


def loads(engine: sa.Engine, frame: pd.DataFrame, args, report: Report) -> None:
    """One run of every load method, in the same order each time (the medians of several runs go out)."""
    truncate(engine)
    # Raw COPY (the ceiling): the same DataFrame encoded with the upsert's own encoder, COPYed straight
    # into the empty ohlcv (same partitions, same primary key), no staging, no conflict handling.
    meta = _table_meta("ohlcv")

    def raw_copy(ordered: bool) -> None:
        valid = validate_frame("ohlcv", frame)
        if ordered:
            valid = _load_order(meta, valid)
        for start in range(0, len(valid), args.batch_rows):
            with engine.begin() as conn:
                payload = _binary_copy_payload(meta, valid.iloc[start : start + args.batch_rows])
                # The validated frame's columns, in table order: the key's price kind included, as the upsert.
                copy_bytes(conn, pgsql.Identifier("ohlcv"), list(valid.columns), "binary", payload)

    seconds, _ = timed(lambda: raw_copy(False))
    report.add(
        "raw COPY (binary, from the DataFrame, no upsert)", len(frame), seconds, "the ceiling, rows as given"
    )
    truncate(engine)
    seconds, _ = timed(lambda: raw_copy(True))
    report.add(
        "raw COPY, rows in the upsert's write order",
        len(frame),
        seconds,
        "same, rows ordered by chunk, series, time",
    )
    truncate(engine)

    seconds, result = timed(lambda: upsert_dataframe(engine, "ohlcv", frame, batch_rows=args.batch_rows))
    assert result.inserted == len(frame), result
    report.add("upsert, new rows", len(frame), seconds, f"inserted {result.inserted:,} (direct COPY path)")

    seconds, result = timed(lambda: upsert_dataframe(engine, "ohlcv", frame, batch_rows=args.batch_rows))
    assert result.written == 0, result
    report.add("re-upsert, unchanged", len(frame), seconds, f"written {result.written:,} (staging path)")

    changed = frame.copy()
    changed.loc[changed.index[::10], "close"] += 0.25
    seconds, result = timed(lambda: upsert_dataframe(engine, "ohlcv", changed, batch_rows=args.batch_rows))
    assert result.updated == len(changed.index[::10]), result
    report.add("re-upsert, 10 % changed", len(frame), seconds, f"updated {result.updated:,} (staging path)")

    # New rows that meet stored rows of their series (gap filling): staging + merge, not the fast path.
    truncate(engine)
    upsert_dataframe(engine, "ohlcv", frame.iloc[::2], batch_rows=args.batch_rows)
    seconds, result = timed(lambda: upsert_dataframe(engine, "ohlcv", frame, batch_rows=args.batch_rows))
    assert result.inserted == len(frame) - len(frame.iloc[::2]), result
    report.add(
        "upsert, half new rows between stored ones",
        len(frame),
        seconds,
        f"inserted {result.inserted:,}, unchanged {result.unchanged:,} (staging path)",
    )

    # Baselines on samples, with keys of their own (another exchange) so that every row is new.
    sample = frame.iloc[: args.to_sql_rows].assign(exchange="to_sql")
    seconds, _ = timed(lambda: sample.to_sql("ohlcv", engine, if_exists="append", index=False))
    report.add("pandas to_sql (plain INSERT, defaults)", len(sample), seconds, "sample")

    rows = frame.iloc[: args.row_by_row_rows].assign(exchange="row_by_row")

    def row_by_row() -> None:
        """The seeds' loop: iterrows, one INSERT … ON CONFLICT per candle, one commit at the end."""
        statement = bench_sql("upsert_row_insert")
        with engine.begin() as conn, conn.connection.dbapi_connection.cursor() as cursor:
            for _, row in rows.iterrows():
                cursor.execute(
                    statement,
                    (
                        row["exchange"],
                        row["symbol"],
                        row["interval"],
                        row["price"],
                        row["time"].to_pydatetime(),
                        float(row["open"]),
                        float(row["high"]),
                        float(row["low"]),
                        float(row["close"]),
                        float(row["volume"]),
                        int(row["trades_count"]),
                        float(row["quality_score"]),
                    ),
                )

    seconds, _ = timed(row_by_row)
    report.add("row-by-row INSERT … ON CONFLICT", len(rows), seconds, "sample, one transaction")


def read_latency(engine: sa.Engine, table_rows: int, queries: int) -> tuple[float, float, float]:
    """p50/p95 of get_ohlcv for 1,000 rows from a `table_rows`-row ohlcv table built server-side."""
    symbols = 20
    minutes = table_rows // symbols
    chunk = TIMESERIES["ohlcv"].chunk_interval
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((START - epoch) // chunk) * chunk  # a chunk boundary
    truncate(engine)
    prepare_partitions(engine, start, start + timedelta(minutes=minutes))
    print(
        f"building a {table_rows:,}-row ohlcv table ({symbols} series x {minutes:,} minutes) ...", flush=True
    )
    with engine.begin() as conn:
        seconds, _ = timed(
            lambda: conn.execute(
                bench_text("upsert_fill_ohlcv"),
                {
                    "start": start,
                    "minutes": minutes,
                    "symbols": symbols,
                    "chunk_minutes": int(chunk / timedelta(minutes=1)),
                },
            )
        )
    print(f"  built in {seconds:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE ohlcv")
    rng = np.random.default_rng(1)
    statement = sql_text("common/get_ohlcv")
    latencies = []
    with engine.connect() as conn:
        for i in range(queries + 20):
            begin = start + timedelta(minutes=int(rng.integers(0, minutes - 1000)))
            params = {
                "exchange": "bench",
                "symbol": f"SYM{int(rng.integers(0, symbols))}",
                "interval": "1m",
                "price": "trade",
                "start": begin,
                "end": begin + timedelta(minutes=1000),
                "limit": 1000,
            }
            started = time.perf_counter()
            rows = conn.execute(statement, params).all()
            elapsed = time.perf_counter() - started
            assert len(rows) == 1000, len(rows)
            if i >= 20:  # warm-up excluded
                latencies.append(elapsed * 1000)
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[18]
    return p50, p95, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="OHLCV rows to load (default 1,000,000)")
    parser.add_argument("--batch-rows", type=int, default=100_000, help="upsert batch size")
    parser.add_argument("--to-sql-rows", type=int, default=50_000, help="sample size for pandas to_sql")
    parser.add_argument(
        "--row-by-row-rows", type=int, default=5_000, help="sample size for row-by-row INSERT"
    )
    parser.add_argument("--csv-rows", type=int, default=100_000, help="sample size for DataFrame.to_csv")
    parser.add_argument(
        "--read-rows", type=int, default=10_000_000, help="size of the get_ohlcv table; 0 skips the read test"
    )
    parser.add_argument("--queries", type=int, default=300, help="get_ohlcv queries timed")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each load; medians are reported")
    parser.add_argument("--database", default="mw_bench_upsert", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    url = server_url(database=args.database)
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            caps = detect(conn)
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        print(
            f"server: {redact(url)} — PostgreSQL {version}, backend {caps.backend.value}, {os.cpu_count()} CPUs"
        )
        if args.rows:
            frame = candles(args.rows)
            span_end = frame["time"].max() + timedelta(days=8)
            truncate(engine)
            prepare_partitions(engine, START, span_end)
            formats = serialization(engine, frame, args.csv_rows)
            paths = merge_paths(engine, frame, args.batch_rows, args.repeats)
            truncate(engine)

            report = Report()
            for repeat in range(args.repeats):
                print(f"loads, run {repeat + 1} of {args.repeats}:")
                loads(engine, frame, args, report)
            print()
            print(
                f"{len(frame):,} OHLCV rows, batches of {args.batch_rows:,}, PostgreSQL {version} ({caps.backend.value})"
            )
            print(report.table())
            new = report.rate("upsert, new rows")
            print(
                f"\nupsert of new rows: {new:,.0f} rows/s end to end = "
                f"{new / report.rate('pandas to_sql (plain INSERT, defaults)'):.1f}x pandas to_sql, "
                f"{new / report.rate('row-by-row INSERT … ON CONFLICT'):.1f}x row-by-row"
            )
            print()
            print("| serialization | rows | encode rows/s | COPY rows/s | encode + COPY rows/s | bytes/row |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, n, encode_s, copy_s, size in formats:
                print(
                    f"| {name} | {n:,} | {n / encode_s:,.0f} | {n / copy_s:,.0f} | "
                    f"{n / (encode_s + copy_s):,.0f} | {size / n:.0f} |"
                )
        if args.rows:
            print()
            print(
                f"| write path (one batch of {min(args.batch_rows, len(frame)):,}) | new rows, s | 10 % changed, s |"
            )
            print("|---|---:|---:|")
            for name, new_s, changed_s in paths:
                changed_text = "—" if changed_s != changed_s else f"{changed_s:.3f}"
                print(f"| {name} | {new_s:.3f} | {changed_text} |")
        if args.read_rows:
            p50, p95, build = read_latency(engine, args.read_rows, args.queries)
            print()
            print(
                f"get_ohlcv, 1,000 rows out of {args.read_rows:,} ({args.queries} queries, table built in "
                f"{build:.0f} s): p50 {p50:.2f} ms, p95 {p95:.2f} ms"
            )
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
