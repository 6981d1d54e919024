"""Benchmark of the landing-folder load: parsing each format and layout, and the whole folder load, against
baselines.

    python benchmarks/landing.py                  # 100,000 candles per file, 9 files
    python benchmarks/landing.py --rows 20000 --no-load

Parsing is compared with the least any reader must do: for JSON `orjson.loads` (after gunzip) +
`pd.DataFrame` of the rows; for CSV, Parquet and Feather pyarrow's own reader + `to_pandas` (CSV with
types inferred); no typing, validation or naming. `parse_file` reads in batches of 50,000 rows. The folder load (parse + ledger + validation + quarantine +
upsert) is compared with `load_frame` of the same frames already parsed, in a scratch database on the
configured server (embedded by default), dropped afterwards unless --keep. Every figure is measured in this
process, in this run.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_text  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.files.landing import load_landing_folder  # noqa: E402
from market_warehouse.resources.files.layouts import parse_file  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402
from market_warehouse.resources.warehouse.load import load_frame  # noqa: E402

T0_MS = 1_704_067_200_000
MINUTE_MS = 60_000


def _klines(n: int) -> list[list]:
    out = []
    for i in range(n):
        o = 100.0 + (i % 500) * 0.01
        t = T0_MS + i * MINUTE_MS
        out.append([t, f"{o:.8f}", f"{o + 0.5:.8f}", f"{o - 0.5:.8f}", f"{o + 0.1:.8f}", "12.50000000",
                    t + MINUTE_MS - 1, "1250.0", 17, "6.0", "600.0", "0"])  # fmt: skip
    return out


def _records(n: int) -> list[dict]:
    return [
        {"timestamp": pd.Timestamp(r[0], unit="ms", tz="UTC").isoformat(), "open": float(r[1]),
         "high": float(r[2]), "low": float(r[3]), "close": float(r[4]), "volume": 12.5}
        for r in _klines(n)
    ]  # fmt: skip


def _freqtrade_frame(n: int) -> pd.DataFrame:
    """freqtrade's candle columns: date (timestamp[ns, UTC]), open, high, low, close, volume."""
    klines = _klines(n)
    return pd.DataFrame(
        {
            "date": pd.to_datetime([r[0] for r in klines], unit="ms", utc=True).astype("datetime64[ns, UTC]"),
            **{
                name: [float(r[i]) for r in klines]
                for i, name in enumerate(("open", "high", "low", "close"), 1)
            },
            "volume": 12.5,
        }
    )


def _columnar(frame: pd.DataFrame, kind: str) -> bytes:
    sink = io.BytesIO()
    if kind == "parquet":
        frame.to_parquet(sink, index=False)
    else:
        frame.to_feather(sink, compression="lz4", compression_level=9)  # as freqtrade writes it
    return sink.getvalue()


def _klines_csv(n: int) -> bytes:
    return ("\n".join(",".join(map(str, row)) for row in _klines(n)) + "\n").encode()


def _zip(name: str, data: bytes) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return sink.getvalue()


def write_files(root: Path, rows: int) -> dict[str, Path]:
    """One file per format or layout, each its own symbol so that every row is new to the warehouse."""
    frame = _freqtrade_frame(rows)
    files = {
        "binance-klines": (root / "binance" / "BTC_USDT-1m.json", orjson.dumps(_klines(rows))),
        "records (ISO times)": (root / "binance" / "ETH_USDT-1m.json", orjson.dumps(_records(rows))),
        "ndjson-records": (
            root / "binance" / "SOL_USDT-1m.ndjson",
            b"\n".join(orjson.dumps(r) for r in _records(rows)),
        ),
        "gzip klines": (root / "binance" / "ADA_USDT-1m.json.gz", gzip.compress(orjson.dumps(_klines(rows)))),
        "parquet (freqtrade)": (root / "binance" / "DOT_USDT-1m.parquet", _columnar(frame, "parquet")),
        "feather (freqtrade, lz4)": (root / "binance" / "XRP_USDT-1m.feather", _columnar(frame, "feather")),
        "csv with header": (root / "binance" / "LTC_USDT-1m.csv", frame.to_csv(index=False).encode()),
        "csv klines in zip (Binance Vision)": (
            root / "binance" / "BNBUSDT-1m-2024-01.zip",
            _zip("BNBUSDT-1m-2024-01.csv", _klines_csv(rows)),
        ),
        "csv klines, gzip": (root / "binance" / "TRX_USDT-1m.csv.gz", gzip.compress(_klines_csv(rows))),
    }
    for path, data in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}


def baseline_read(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pq.read_table(path).to_pandas()
    if name.endswith(".feather"):
        return feather.read_table(path).to_pandas()
    if name.endswith(".zip"):  # the benchmark's zip and gzip CSVs are header-less klines
        with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as member:
            return _csv_baseline(member, header=False)
    if ".csv" in name:
        stream = pa.input_stream(str(path), compression="detect")
        return _csv_baseline(stream, header=not name.endswith(".gz"))
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if path.suffix == ".ndjson":
        return pd.DataFrame([orjson.loads(line) for line in data.splitlines() if line.strip()])
    return pd.DataFrame(orjson.loads(data))


def _csv_baseline(stream, *, header: bool) -> pd.DataFrame:
    options = pa_csv.ReadOptions(autogenerate_column_names=not header)
    return pa_csv.read_csv(stream, read_options=options).to_pandas()


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_parsing(root: Path, files: dict[str, Path], rows: int, repeat: int) -> dict[str, pd.DataFrame]:
    print("| layout | file MB | baseline rows/s | parse_file rows/s | parse_file / baseline time |")
    print("|---|---:|---:|---:|---:|")
    frames = {}
    for name, path in files.items():
        base, _ = timed(lambda p=path: baseline_read(p), repeat)
        seconds, parsed = timed(lambda p=path: parse_file(p, relative_to=root), repeat)
        assert len(parsed.frame) == rows and parsed.rejected.empty, name
        frames[name] = parsed.frame
        size = path.stat().st_size / 1e6
        print(f"| {name} | {size:.1f} | {rows / base:,.0f} | {rows / seconds:,.0f} | {seconds / base:.2f}x |")
    return frames


def _truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(bench_text("landing_truncate"))


def bench_load(root: Path, frames: dict[str, pd.DataFrame], database: str, keep: bool) -> None:
    url = server_url(database=database)
    engine = create_engine(url)
    total = sum(len(f) for f in frames.values())
    try:
        upgrade(engine)
        print(f"\nserver: {redact(url)}")
        _truncate(engine)
        start = time.perf_counter()
        for frame in frames.values():
            result = load_frame(engine, "ohlcv", frame, source="bench")
            assert result.inserted == len(frame), result
        base = time.perf_counter() - start
        _truncate(engine)
        start = time.perf_counter()
        report = load_landing_folder(engine, root)
        first = time.perf_counter() - start
        assert report.inserted == total and report.failed == 0, report
        start = time.perf_counter()
        again = load_landing_folder(engine, root)
        second = time.perf_counter() - start
        assert again.skipped == len(frames) and again.fetched == 0, again
        print("| step | rows | seconds | rows/s | vs load_frame of parsed frames |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| load_frame of the parsed frames (baseline) | {total:,} | {base:.2f} | {total / base:,.0f} | 1.00x |"
        )
        print(
            f"| load_landing_folder, first run | {total:,} | {first:.2f} | {total / first:,.0f} | "
            f"{first / base:.2f}x |"
        )
        print(
            f"| load_landing_folder, unchanged folder (skipped by hash) | {total:,} | {second:.2f} | "
            f"{total / second:,.0f} | {second / base:.3f}x |"
        )
    finally:
        engine.dispose()
        if not keep:
            drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="candles per file (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="parsing runs per layout (best is reported)")
    parser.add_argument("--no-load", action="store_true", help="parsing only, no database")
    parser.add_argument("--database", default="mw_bench_landing", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mw-landing-bench-"))
    try:
        files = write_files(root, args.rows)
        print(f"{args.rows:,} one-minute candles per file\n")
        frames = bench_parsing(root, files, args.rows, args.repeat)
        if not args.no_load:
            bench_load(root, frames, args.database, args.keep)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
