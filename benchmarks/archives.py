"""Benchmark of history archives into the warehouse (issue 14): rows/s of Parquet, Feather, CSV-in-zip
(Binance Vision klines) and JSON (freqtrade's array of arrays) through the landing loader, each as a ratio
of raw binary COPY of the same rows and of a bare decode of the same file; and the peak RSS of loading a
large generated CSV.

    python benchmarks/archives.py                          # 2,000,000 one-minute candles, 3 GB CSV
    python benchmarks/archives.py --rows 200000 --big-csv-gb 0.25

- load: `resources.files.landing.load_file` (read in batches, validate, quarantine, upsert, ledger) into an
  empty `ohlcv` of a scratch database, batches of `--batch-rows`;
- raw COPY: the same candles as a canonical frame, encoded with the upsert's own binary COPY encoder and
  COPYed straight into the empty `ohlcv` in batches of the same size: no reading, no validation, no upsert
  (nor the columns the load adds to each row: its quality score, anomaly flag and source);
- each load and baseline runs `--repeat` times and the best is kept (emptying the tables is not timed);
- warm-up: before anything is timed, a small file of each format is loaded once (one-time costs of the
  process are not charged to the format timed first);
- bare decode: the least any reader must do with the file: `pq.read_table`, `feather.read_table`,
  `pyarrow.csv.read_csv` of the zip member, `orjson.loads` of the JSON bytes;
- peak RSS: a child process loads a generated Binance-style CSV of `--big-csv-gb` GB and reports its
  `ru_maxrss` (the child's RSS after imports is printed beside it).
Every figure is measured in this run on this machine; the scratch database is dropped unless --keep.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import sqlalchemy as sa
from psycopg2 import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_text  # noqa: E402
from benchmarks.upsert import copy_bytes, prepare_partitions  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.files.landing import load_file  # noqa: E402
from market_warehouse.resources.files.naming import ccxt_exchange_ids  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.warehouse.upsert import _binary_copy_payload, _table_meta, validate_frame  # noqa: E402

T0 = pd.Timestamp("2020-01-01", tz="UTC")
# The loads' clock, after every generated candle (a 3 GB CSV reaches 2105): none is refused as future.
NOW = pd.Timestamp("2200-01-01", tz="UTC").to_pydatetime()
_URL_VARIABLE = "MW_BENCH_ARCHIVES_URL"  # the scratch database, to the child (not on its command line)
KLINES = "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.zip"
FILES = {
    "Parquet": "binance/BTC_USDT-1m.parquet",
    "Feather": "binance/BTC_USDT-1m.feather",
    "CSV in zip": KLINES,
    "JSON": "binance/BTC_USDT-1m.json",
}


def candles(rows: int, start: pd.Timestamp = T0) -> pd.DataFrame:
    """freqtrade's candle frame (date, open, high, low, close, volume), a random walk."""
    rng = np.random.default_rng(7)
    close = 100.0 + np.cumsum(rng.normal(0, 0.05, rows)).round(4)
    opens = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.02, rows)).round(4)
    date = pd.date_range(start, periods=rows, freq="1min").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {"date": date, "open": opens, "high": np.maximum(opens, close) + spread,
         "low": np.minimum(opens, close) - spread, "close": close, "volume": rng.uniform(1, 50, rows).round(3)}
    )  # fmt: skip


def kline_table(frame: pd.DataFrame) -> pa.Table:
    """Binance Vision's 12 columns (no header in the file)."""
    ms = frame["date"].astype("int64").to_numpy() // 10**6
    n = len(frame)
    return pa.table(
        {"open_time": ms, "open": frame["open"], "high": frame["high"], "low": frame["low"],
         "close": frame["close"], "volume": frame["volume"], "close_time": ms + 59_999,
         "quote_volume": frame["volume"] * frame["close"], "count": np.full(n, 17), "taker_buy_volume":
         frame["volume"] / 2, "taker_buy_quote_volume": frame["volume"] * frame["close"] / 2,
         "ignore": np.zeros(n, dtype="int64")}
    )  # fmt: skip


def csv_bytes(frame: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(kline_table(frame), sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def write_files(root: Path, frame: pd.DataFrame) -> dict[str, Path]:
    paths = {name: root / relative for name, relative in FILES.items()}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, paths["Parquet"])
    feather.write_feather(table, paths["Feather"], compression="lz4", compression_level=9)  # freqtrade's
    with zipfile.ZipFile(paths["CSV in zip"], "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(Path(KLINES).with_suffix(".csv").name, csv_bytes(frame))
    ms = (frame["date"].astype("int64") // 10**6).to_numpy(dtype="float64")
    values = np.ascontiguousarray(
        np.column_stack([ms, frame[["open", "high", "low", "close", "volume"]].to_numpy()])
    )
    paths["JSON"].write_bytes(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY))
    return paths


def bare_decode(name: str, path: Path) -> int:
    """The least a reader must do: decode the file into memory (rows decoded)."""
    if name == "Parquet":
        return pq.read_table(path).num_rows
    if name == "Feather":
        return feather.read_table(path).num_rows
    if name == "CSV in zip":
        with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as member:
            return pa_csv.read_csv(member, pa_csv.ReadOptions(autogenerate_column_names=True)).num_rows
    return len(orjson.loads(path.read_bytes()))


def truncate(engine: sa.Engine) -> None:
    """Empty what a file load writes (candles, ledger, quarantine, audit): each load starts equal."""
    with engine.begin() as conn:
        conn.execute(bench_text("landing_truncate"))
        conn.execute(bench_text("upsert_truncate"))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best(measure: Callable[[], float], repeat: int) -> float:
    """The least of `repeat` measurements (seconds): loads and baselines alike."""
    return min(measure() for _ in range(repeat))


def raw_copy(engine: sa.Engine, frame: pd.DataFrame, batch_rows: int) -> None:
    """The canonical rows COPYed (binary, the upsert's encoder) straight into ohlcv: the ceiling."""
    canonical = frame.rename(columns={"date": "time"}).assign(
        exchange="binance", symbol="BTC/USDT", interval="1m"
    )
    valid = validate_frame("ohlcv", canonical)
    meta = _table_meta("ohlcv")
    columns = list(valid.columns)
    for start in range(0, len(valid), batch_rows):
        with engine.begin() as conn:
            payload = _binary_copy_payload(meta, valid.iloc[start : start + batch_rows])
            copy_bytes(conn, pgsql.Identifier("ohlcv"), columns, "binary", payload)


def warm_up(engine: sa.Engine, root: Path, batch_rows: int) -> None:
    """Load a small file of each format once, untimed: what a process pays once (importing ccxt for the
    exchange ids, ~2 s; the readers' and the load path's lazy imports, the validation rules synced and
    read, first connections) is not a cost of the format that happens to be timed first."""
    ccxt_exchange_ids()
    warm = root / "warm-up"
    for path in write_files(warm, candles(min(5_000, 2 * batch_rows))).values():
        report = load_file(engine, warm, path, batch_rows=batch_rows, now=NOW)
        assert report.status == "loaded", report
    shutil.rmtree(warm)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def load_once(engine: sa.Engine, root: Path, path: Path, rows: int, batch_rows: int) -> float:
    """One load of the file into the emptied warehouse (emptying it is not timed)."""
    truncate(engine)
    start = time.perf_counter()
    report = load_file(engine, root, path, batch_rows=batch_rows, now=NOW)
    seconds = time.perf_counter() - start
    assert report.status == "loaded" and report.inserted == rows, report
    return seconds


def bench_formats(engine: sa.Engine, root: Path, rows: int, batch_rows: int, repeat: int) -> None:
    frame = candles(rows)
    paths = write_files(root, frame)
    _partitions(engine, rows)
    warm_up(engine, root, batch_rows)
    truncate(engine)
    print(f"load average before (1, 5, 15 min): {load_average()}")
    copy_s = best(lambda: truncate(engine) or timed(lambda: raw_copy(engine, frame, batch_rows)), repeat)
    print(f"raw binary COPY of the {rows:,} rows: {copy_s:.2f} s ({rows / copy_s:,.0f} rows/s)\n")
    print("| format | file MB | load s | load rows/s | vs raw COPY | bare decode rows/s | vs bare decode |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, path in paths.items():
        decode_s = best(lambda name=name, path=path: timed(lambda: bare_decode(name, path)), repeat)
        load_s = best(lambda path=path: load_once(engine, root, path, rows, batch_rows), repeat)
        print(
            f"| {name} | {path.stat().st_size / 1e6:,.0f} | {load_s:.2f} | {rows / load_s:,.0f} | "
            f"{copy_s / load_s:.2f} | {rows / decode_s:,.0f} | {decode_s / load_s:.2f} |",
            flush=True,
        )
    print(f"\nload average after (1, 5, 15 min): {load_average()}")


def _partitions(engine: sa.Engine, rows: int) -> None:
    """The time partitions of the candles exist before anything is timed: neither the first format loaded
    nor the raw COPY pays for creating them."""
    end = T0 + pd.Timedelta(minutes=rows) + pd.Timedelta(days=1)
    start = T0
    while start < end:  # a year per transaction: a 3 GB CSV spans ~50 years, too many locks for one
        stop = min(start + pd.Timedelta(days=365), end)
        prepare_partitions(engine, start.to_pydatetime(), stop.to_pydatetime())
        start = stop


def write_big_csv(path: Path, gigabytes: float) -> int:
    """A Binance-style header-less klines CSV of about `gigabytes` GB, written in chunks; rows written."""
    target, written, rows = gigabytes * 1e9, 0, 0
    chunk = 500_000
    with path.open("wb") as out:
        while written < target:
            data = csv_bytes(candles(chunk, start=T0 + pd.Timedelta(minutes=rows)))
            out.write(data)
            written += len(data)
            rows += chunk
    return rows


def bench_rss(engine: sa.Engine, database_url: str, root: Path, gigabytes: float, batch_rows: int) -> None:
    folder = root / "big" / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1m"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "BTCUSDT-1m-2020-01.csv"
    rows = write_big_csv(path, gigabytes)
    _partitions(engine, rows)
    size = path.stat().st_size
    child = subprocess.run(
        [sys.executable, __file__, "--child-load", str(path), "--child-root", str(root / "big"),
         "--batch-rows", str(batch_rows)],
        check=True, capture_output=True, text=True, env={**os.environ, _URL_VARIABLE: database_url},
    )  # fmt: skip
    print(f"\npeak RSS loading a {size / 1e9:.2f} GB CSV ({rows:,} rows): {child.stdout.strip()}")
    print(f"load average after (1, 5, 15 min): {load_average()}")
    path.unlink()


def high_water_kib() -> int:
    """This process's peak RSS (KiB): /proc's VmHWM, which, unlike `ru_maxrss`, does not carry over the
    parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_load(path: Path, root: Path, url: str, batch_rows: int) -> None:
    """In the child process: load one file, print the peak RSS and the RSS after imports."""
    after_imports = high_water_kib()
    engine = create_engine(url)
    start = time.perf_counter()
    report = load_file(engine, root, path, batch_rows=batch_rows, now=NOW)
    seconds = time.perf_counter() - start
    peak = high_water_kib()
    engine.dispose()
    assert report.status == "loaded", report.error
    print(
        f"{peak / 1024:,.0f} MiB (after imports {after_imports / 1024:,.0f} MiB; {report.fetched:,} rows in "
        f"{seconds:.0f} s, {report.fetched / seconds:,.0f} rows/s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="one-minute candles per file")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each load and baseline (the best is reported)"
    )
    parser.add_argument(
        "--big-csv-gb", type=float, default=3.0, help="size of the CSV whose peak RSS is measured"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the big CSV")
    parser.add_argument("--only-rss", action="store_true", help="only the big CSV's peak RSS")
    parser.add_argument("--database", default="mw_bench_archives", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--child-load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_load:
        child_load(args.child_load, args.child_root, os.environ[_URL_VARIABLE], args.batch_rows)
        return 0
    url = server_url(database=args.database)
    engine = create_engine(url)
    root = Path(tempfile.mkdtemp(prefix="mw-archives-bench-"))
    try:
        upgrade(engine)
        print(
            f"server: {redact(url)}; {args.rows:,} one-minute candles per file, batches of {args.batch_rows:,}\n"
        )
        if not args.only_rss:
            bench_formats(engine, root, args.rows, args.batch_rows, args.repeat)
        if not args.no_rss:
            truncate(engine)
            bench_rss(
                engine, url.render_as_string(hide_password=False), root, args.big_csv_gb, args.batch_rows
            )
    finally:
        engine.dispose()
        shutil.rmtree(root, ignore_errors=True)
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
