"""Speed where users feel it, in one run: the validated load path and the reads, as ratios to raw COPY.

    python benchmarks/pipeline.py                                  # 1M rows; tables of 1M, 5M, 20M rows
    python benchmarks/pipeline.py --rows 200000 --sizes 200000,1000000 --read-rows 100000,500000

Runs in a scratch database (dropped afterwards unless --keep) on the configured server: the embedded
PostgreSQL by default, or the server of DATABASE_URL (point it at TimescaleDB to measure that backend).
Every figure is measured in this process, on this server, in this run; the machine may be shared, so the
ratios (robust to load) are the result and the absolute rates only context. The load average is printed.

Sections (each can be skipped with --skip):

* loads — `--rows` OHLCV candles: raw binary COPY (the ceiling: validate + pgpq encode + COPY into the empty
  table, no upsert), `upsert_dataframe` of new rows, `load_frame` of new rows (split, quarantine, history
  read, quality scores, upsert with audit, anomalies) and `load_frame` of the same rows again (unchanged);
  medians of --repeats, each as a ratio to the raw COPY rate;
* scaling — the same `--day-rows` day (one 1m candle per series and minute) loaded into tables of each of
  --sizes rows (built server-side, the day's rows left out), then re-loaded unchanged --repeats times: the
  re-load must not grow with the table (spread = slowest / fastest median);
* reads — on the last scaling table: `--read-rows` rows of whole series read through the project's
  `get_ohlcv_frame` (the Warehouse API), the ADBC PostgreSQL driver (Arrow -> pandas), connectorx (pandas),
  and the wire ceiling: binary COPY of the same query received as bytes (no decoding). Ratios are
  ceiling time / method time. Then the p50 of 1,000-row range reads (random series and start) through
  `get_ohlcv` (records), `get_ohlcv_frame` and bare ADBC.

The same script measures the code before and after a change: where the API has no multi-series call, the
project line loops over the series, one call each (what a user had to do).
"""

from __future__ import annotations

import argparse
import inspect
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
import sqlalchemy as sa
from psycopg2 import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_sql, bench_text  # noqa: E402
from benchmarks.validation import make_frame  # noqa: E402
from market_warehouse.resources.backend import detect  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.models import TIMESERIES  # noqa: E402
from market_warehouse.resources.partitioning import ensure_partitions  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.warehouse.api import Warehouse  # noqa: E402
from market_warehouse.resources.warehouse.load import load_frame  # noqa: E402
from market_warehouse.resources.warehouse.upsert import (  # noqa: E402
    _binary_copy_payload,
    _table_meta,
    upsert_dataframe,
    validate_frame,
)

# Reference "now" of every load: after all generated candles, so none is in the future.
NOW = datetime(2031, 1, 1, tzinfo=UTC)
# The scaling tables end here (a 7-day chunk boundary: 1970-01-01 + 7 * k days); the re-loaded day sits in
# the last full chunk, so it meets a full chunk of stored rows whatever the table's size. In the past of the
# wall clock, as a re-run partition is: the stored rows' `ingested_at` (server time) is after their close.
FILL_END = datetime(2025, 1, 2, tzinfo=UTC)
DAY = FILL_END - timedelta(days=3)
READ_COLUMNS = (
    "exchange, symbol, interval, time, open, high, low, close, volume, quote_volume, trades_count, vwap, "
    "quality_score, is_anomaly, source"
)


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def median_time(fn: Callable[[], object], repeats: int, before: Callable[[], object] | None = None) -> float:
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        runs.append(timed(fn)[0])
    return statistics.median(runs)


def empty_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(bench_text("quality_truncate"))


def vacuum(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def raw_copy(engine: sa.Engine, frame: pd.DataFrame, batch_rows: int) -> None:
    """The ceiling: the frame validated, encoded by the upsert's own encoder and COPYed into the table."""
    meta = _table_meta("ohlcv")
    valid = validate_frame("ohlcv", frame)
    statement = pgsql.SQL(bench_sql("upsert_copy")).format(
        table=pgsql.Identifier("ohlcv"),
        columns=pgsql.SQL(", ").join(map(pgsql.Identifier, valid.columns)),
        format=pgsql.SQL("binary"),
    )
    for start in range(0, len(valid), batch_rows):
        payload = _binary_copy_payload(meta, valid.iloc[start : start + batch_rows])
        with engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            with dbapi.cursor() as cursor:
                cursor.copy_expert(statement.as_string(dbapi), io.BytesIO(payload), size=1 << 20)


# --- loads ------------------------------------------------------------------------------------------------


def loads(engine: sa.Engine, args) -> list[tuple[str, int, float, str]]:
    """Each repeat runs every method once, in turn, so a change of machine load hits them alike."""
    frame = make_frame(args.rows, args.series, 0.0)
    with engine.begin() as conn:
        ensure_partitions(conn, detect(conn), TIMESERIES["ohlcv"], frame["time"].min(), frame["time"].max())
    empty_tables(engine)
    load_frame(engine, "ohlcv", frame.iloc[:1000], now=NOW)  # once per process: the rules' sync
    runs: dict[str, list[float]] = {}

    def run(name: str, fn: Callable[[], object], fresh: bool) -> object:
        if fresh:
            empty_tables(engine)
        seconds, out = timed(fn)
        runs.setdefault(name, []).append(seconds)
        return out

    for _ in range(args.repeats):
        run("raw", lambda: raw_copy(engine, frame, 100_000), True)
        run("upsert", lambda: upsert_dataframe(engine, "ohlcv", frame), True)
        first = run("load", lambda: load_frame(engine, "ohlcv", frame, run_id="bench", now=NOW), True)
        assert first.inserted == len(frame), first
        again = run("again", lambda: load_frame(engine, "ohlcv", frame, run_id="bench-2", now=NOW), False)
        assert again.unchanged == len(frame), again
        print(f"  loads: run {len(runs['raw'])} of {args.repeats} done; load {load_average()}", flush=True)
    empty_tables(engine)
    med = {name: statistics.median(seconds) for name, seconds in runs.items()}
    return [
        ("raw binary COPY (ceiling)", len(frame), med["raw"], "validate + encode + COPY, batches of 100k"),
        ("upsert_dataframe, new rows", len(frame), med["upsert"], "batches of 100k"),
        ("load_frame, new rows", len(frame), med["load"], "batches of 50k (its default)"),
        ("load_frame, unchanged re-load", len(frame), med["again"], "the same rows again"),
    ]


# --- scaling ----------------------------------------------------------------------------------------------


def fill(engine: sa.Engine, start: datetime, end: datetime, symbols: int) -> None:
    """Server-side candles of `symbols` series, every minute of [start, end)."""
    chunk = TIMESERIES["ohlcv"].chunk_interval
    minutes = int((end - start) / timedelta(minutes=1))
    if minutes <= 0:
        return
    with engine.begin() as conn:
        ensure_partitions(conn, detect(conn), TIMESERIES["ohlcv"], start, end)
        conn.execute(
            bench_text("upsert_fill_ohlcv"),
            {
                "start": start,
                "minutes": minutes,
                "symbols": symbols,
                "chunk_minutes": int(chunk / timedelta(minutes=1)),
            },
        )


def day_frame(symbols: int) -> pd.DataFrame:
    """One day of 1m candles for the fill's series ('bench', 'SYM<i>', '1m'), prices near the fill's."""
    frame = make_frame(symbols * 1440, symbols, 0.0, seed=7)
    frame["exchange"] = "bench"
    frame["symbol"] = "SYM" + frame["symbol"].str.extract(r"S(\d+)/", expand=False)
    frame["time"] = frame["time"] - frame["time"].min() + pd.Timestamp(DAY)
    return frame


def build_table(engine: sa.Engine, size: int, day: pd.DataFrame, symbols: int) -> tuple[int, float, float]:
    """A table of `size` rows around DAY (DAY itself left out), then DAY loaded into it: (rows, build s,
    load s)."""
    empty_tables(engine)
    minutes_before = max(0, (size - len(day)) // symbols - 2 * 1440)
    started = time.perf_counter()
    fill(engine, DAY - timedelta(minutes=minutes_before), DAY, symbols)
    fill(engine, DAY + timedelta(days=1), DAY + timedelta(days=3), symbols)
    vacuum(engine)
    built = time.perf_counter() - started
    new_s, first = timed(lambda: load_frame(engine, "ohlcv", day, run_id="day", now=NOW))
    assert first.inserted == len(day), first
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM ohlcv").scalar_one()
    print(f"  table of {rows:,} rows built in {built:.0f} s, day loaded in {new_s:.2f} s", flush=True)
    return rows, built, new_s


def scaling(engines: list[sa.Engine], args) -> tuple[list[tuple[int, float, float]], int]:
    """One table per size (each in its own scratch database), then the day re-loaded into each in turn,
    run after run: a change of machine load hits every size alike."""
    symbols = max(1, round(args.day_rows / 1440))
    day = day_frame(symbols)
    built = [
        build_table(engine, size, day, symbols) for engine, size in zip(engines, args.sizes, strict=True)
    ]
    again: list[list[float]] = [[] for _ in engines]
    for i in range(args.scaling_repeats):
        for engine, runs in zip(engines, again, strict=True):
            seconds, result = timed(
                lambda e=engine, i=i: load_frame(e, "ohlcv", day, run_id=f"re{i}", now=NOW)
            )
            assert result.unchanged == len(day), result
            runs.append(seconds)
    print(f"  re-loads done; load {load_average()}", flush=True)
    return [
        (rows, new_s, statistics.median(runs)) for (rows, _, new_s), runs in zip(built, again, strict=True)
    ], symbols


# --- reads ------------------------------------------------------------------------------------------------


def libpq_uri(url: sa.URL, host_required: bool = False) -> str:
    """The database as a libpq URI (ADBC, connectorx); never printed (it may hold a password).

    connectorx's URL parser refuses an empty host: a Unix-socket URL gets `localhost`, and the socket
    directory in `?host=` still wins."""
    url = url.set(drivername="postgresql")
    if host_required and not url.host:
        url = url.set(host="localhost")
    return url.render_as_string(hide_password=False)


def read_query(symbols: list[str], start: datetime, end: datetime) -> str:
    """The read of whole series as one literal query (ADBC, connectorx and COPY get the same text)."""
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in symbols)
    return (
        f"SELECT {READ_COLUMNS} FROM ohlcv WHERE exchange = 'bench' AND symbol IN ({names}) "  # noqa: S608
        f"AND interval = '1m' AND time >= '{start.isoformat()}' AND time < '{end.isoformat()}' "
        "ORDER BY symbol, time"
    )


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(b)


def multi_series_api() -> bool:
    """Whether the API reads many series in one call (the same script measures the code before it did)."""
    return "as_arrow" in inspect.signature(Warehouse.get_ohlcv_frame).parameters


def reads(engine: sa.Engine, url: sa.URL, args, symbols: int) -> tuple[list, list, list[str]]:
    """Read throughput per method and size, and 1,000-row read latency."""
    notes = []
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError as exc:
        adbc = None
        notes.append(f"ADBC not measured: {exc} (pip install adbc-driver-postgresql)")
    try:
        import connectorx
    except ImportError as exc:
        connectorx = None
        notes.append(f"connectorx not measured: {exc} (pip install connectorx)")
    with engine.connect() as conn:
        first, last = conn.exec_driver_sql(
            "SELECT min(time), max(time) FROM ohlcv WHERE exchange = 'bench' AND symbol = 'SYM0'"
        ).one()
    per_series = int((last - first) / timedelta(minutes=1)) + 1
    uri, cx_uri = libpq_uri(url), libpq_uri(url, host_required=True)
    adbc_conn = adbc.connect(uri) if adbc else None
    wh = Warehouse(engine)
    multi = multi_series_api()
    throughput = []
    try:
        for rows in args.read_rows:
            n_series = min(symbols, -(-rows // per_series))
            minutes = rows // n_series
            rows = n_series * minutes  # whole minutes of whole series
            names = [f"SYM{i}" for i in range(n_series)]
            start, end = first, first + timedelta(minutes=minutes)
            query = read_query(names, start, end)

            def ceiling(query=query, rows=rows) -> int:
                with engine.connect() as conn:
                    dbapi = conn.connection.dbapi_connection
                    with dbapi.cursor() as cursor:
                        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", _Null())
                return rows

            def project(names=names, start=start, end=end) -> int:
                if multi:
                    frame = wh.get_ohlcv_frame("bench", names, "1m", start, end)
                else:
                    frame = pd.concat(
                        [wh.get_ohlcv_frame("bench", s, "1m", start, end) for s in names], ignore_index=True
                    )
                return len(frame)

            def with_adbc(query=query) -> int:
                with adbc_conn.cursor() as cursor:
                    cursor.execute(query)
                    return len(cursor.fetch_arrow_table().to_pandas())

            def with_connectorx(query=query) -> int:
                return len(connectorx.read_sql(cx_uri, query, return_type="pandas"))

            methods = {"COPY binary, bytes only (wire ceiling)": ceiling, "project get_ohlcv_frame": project}
            if adbc_conn is not None:
                methods["ADBC -> Arrow -> pandas"] = with_adbc
            if connectorx is not None:
                methods["connectorx -> pandas"] = with_connectorx
            samples: dict[str, list[float]] = {name: [] for name in methods}
            for fn in methods.values():  # untimed: connections opened, as in a running application
                fn()
            for _ in range(
                args.read_repeats
            ):  # interleaved: a change of machine load hits every method alike
                for name, fn in methods.items():
                    seconds, got = timed(fn)
                    assert got == rows, (name, got)
                    samples[name].append(seconds)
            base = statistics.median(samples["COPY binary, bytes only (wire ceiling)"])
            for name, runs in samples.items():
                throughput.append((rows, n_series, name, statistics.median(runs), base))
            print(f"  reads of {rows:,} rows done; load {load_average()}", flush=True)

        rng = np.random.default_rng(3)
        latency: dict[str, list[float]] = {"get_ohlcv (records)": [], "get_ohlcv_frame": []}
        if adbc_conn is not None:
            latency["bare ADBC (Arrow)"] = []
        for i in range(args.queries + 10):
            symbol = f"SYM{int(rng.integers(0, symbols))}"
            begin = first + timedelta(minutes=int(rng.integers(0, max(1, per_series - 1000))))
            calls = {
                "get_ohlcv (records)": lambda s=symbol, b=begin: len(
                    wh.get_ohlcv("bench", s, "1m", b, limit=1000)
                ),
                "get_ohlcv_frame": lambda s=symbol, b=begin: len(
                    wh.get_ohlcv_frame("bench", s, "1m", b, limit=1000)
                ),
            }
            if adbc_conn is not None:

                def bare(s=symbol, b=begin) -> int:
                    with adbc_conn.cursor() as cursor:
                        cursor.execute(read_query([s], b, b + timedelta(minutes=1000)))
                        return cursor.fetch_arrow_table().num_rows

                calls["bare ADBC (Arrow)"] = bare
            for name, fn in calls.items():
                seconds, got = timed(fn)
                assert got == 1000, (name, got)
                if i >= 10:
                    latency[name].append(seconds * 1000)
        p50 = [
            (name, statistics.median(ms), statistics.quantiles(ms, n=20)[18]) for name, ms in latency.items()
        ]
    finally:
        if adbc_conn is not None:
            adbc_conn.close()
    return throughput, p50, notes


# --- report -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the load lines")
    parser.add_argument("--series", type=int, default=20, help="series of the load lines")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(float(x)) for x in s.split(",")],
        default=[1_000_000, 5_000_000, 20_000_000],
        help="table sizes of the scaling line, comma-separated (default 1000000,5000000,20000000)",
    )
    parser.add_argument("--day-rows", type=int, default=50_000, help="rows of the re-loaded day (~50k)")
    parser.add_argument(
        "--read-rows",
        type=lambda s: [int(float(x)) for x in s.split(",")],
        default=[100_000, 1_000_000],
        help="rows per read, comma-separated (default 100000,1000000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="1,000-row reads timed per method")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; medians reported")
    parser.add_argument(
        "--scaling-repeats", type=int, default=7, help="re-loads of the day per table size (medians)"
    )
    parser.add_argument("--read-repeats", type=int, default=7, help="runs of each read (medians)")
    parser.add_argument("--skip", default="", help="sections to skip, comma-separated: loads,scaling,reads")
    parser.add_argument("--database", default="mw_bench_pipeline", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    url = server_url(database=args.database)
    engine = create_engine(url)
    scratch: list[sa.URL] = []
    try:
        upgrade(engine)
        with engine.connect() as conn:
            caps = detect(conn)
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        print(
            f"server: {redact(url)} — PostgreSQL {version}, backend {caps.backend.value}, "
            f"{os.cpu_count()} CPUs, load average {load_average()}",
            flush=True,
        )
        load_lines = loads(engine, args) if "loads" not in skip else []
        scale_lines, symbols = ([], 1)
        read_engine, read_url = engine, url
        if "scaling" not in skip or "reads" not in skip:
            sizes = args.sizes if "scaling" not in skip else args.sizes[-1:]
            print(f"scaling: the same day re-loaded into tables of {', '.join(f'{s:,}' for s in sizes)} rows")
            engines = [engine]
            for size in sizes[1:]:
                scratch.append(server_url(database=f"{args.database}_{size}"))
                engines.append(create_engine(scratch[-1]))
                upgrade(engines[-1])
            scale_lines, symbols = scaling(engines, argparse.Namespace(**{**vars(args), "sizes": sizes}))
            read_engine, read_url = engines[-1], (scratch or [url])[-1]
            for other in engines[1:-1]:
                other.dispose()
        read_lines, p50_lines, notes = (
            reads(read_engine, read_url, args, symbols) if "reads" not in skip else ([], [], [])
        )

        print()
        print(
            f"PostgreSQL {version} ({caps.backend.value}), {os.cpu_count()} CPUs, load average {load_average()}"
        )
        if load_lines:
            ceiling = load_lines[0][1] / load_lines[0][2]
            print(
                f"\n| load path ({load_lines[0][1]:,} OHLCV rows, medians of {args.repeats}) | seconds | rows/s | ratio to raw COPY | note |"
            )
            print("|---|---:|---:|---:|---|")
            for name, rows, seconds, note in load_lines:
                rate = rows / seconds
                print(f"| {name} | {seconds:.2f} | {rate:,.0f} | {rate / ceiling:.2f} | {note} |")
        if scale_lines and "scaling" not in skip:
            print(
                f"\n| table rows | load the new day, s | re-load it unchanged, s (median of {args.scaling_repeats}) | re-load rows/s |"
            )
            print("|---:|---:|---:|---:|")
            for rows, new_s, again_s in scale_lines:
                print(f"| {rows:,} | {new_s:.2f} | {again_s:.2f} | {args.day_rows / again_s:,.0f} |")
            agains = [a for _, _, a in scale_lines]
            print(f"re-load spread (slowest / fastest): {max(agains) / min(agains):.2f}x (goal <= 1.2x)")
        if read_lines:
            print(
                f"\n| read | rows | series | seconds (median of {args.read_repeats}) | rows/s | ratio to the wire ceiling |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            for rows, n_series, name, seconds, base in read_lines:
                print(
                    f"| {name} | {rows:,} | {n_series} | {seconds:.3f} | {rows / seconds:,.0f} | {base / seconds:.2f} |"
                )
            style = (
                "one multi-series call" if multi_series_api() else "one call per series (no multi-series API)"
            )
            print(f"project get_ohlcv_frame: {style}")
        if p50_lines:
            print(f"\n| 1,000-row range read (table of {scale_lines[-1][0]:,} rows) | p50 ms | p95 ms |")
            print("|---|---:|---:|")
            for name, p50, p95 in p50_lines:
                print(f"| {name} | {p50:.2f} | {p95:.2f} |")
        for note in notes:
            print(f"note: {note}")
    finally:
        engine.dispose()
        if not args.keep:
            for scratch_url in [url, *scratch]:
                drop_database(scratch_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
