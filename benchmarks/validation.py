"""Benchmark: validating 1M OHLCV rows — the vectorized row-level split against the GX 1.x suite.

    python benchmarks/validation.py                    # 1,000,000 rows (20 series x 50,000 1m candles)
    python benchmarks/validation.py --rows 200000 --runs 5

No database: everything runs on one in-memory frame with 0.1 % of the rows broken (negative volumes,
high < open, misaligned times). Timed, best of --runs, in this process:

* baseline — eight core checks hand-written as numpy masks (not-null, prices > 0, volume >= 0,
  high >= max(open, close), low <= min(open, close), unique key, alignment): the floor any approach pays;
* split — `split_frame` with the whole built-in ohlcv suite: typing, every rule, messages of failing rows,
  good/rejected frames (what `load_frame` does before each upsert);
* gx — `expectations.validate`: the GX suite built from the same rules (native expectations plus
  rule columns for the kinds GX lacks), on a warm ephemeral context;
* gx_core8 — GX with only the eight core expectations;
* score — `score_frame` on the good rows: quality score and rolling z-scores of returns and volume per
  series (window 100), the other vectorized step of `load_frame` before the upsert.

The GX import and first context are timed separately (once per process in the pipeline). Results are a
markdown table with rows/s and the ratio to the baseline.

With --load-rows N (default 200,000; 0 skips), the whole write path is timed too, in a scratch database
on the configured server (embedded PostgreSQL by default, dropped afterwards): `upsert_dataframe` of the
rows (no validation: the baseline of this table), then again (all unchanged), against `load_frame` (split,
quarantine, warm-up read, scores, upsert, anomalies) into an emptied ohlcv, then `load_frame` again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sqlfiles import bench_text  # noqa: E402
from market_warehouse.resources.backend import detect  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.models import TIMESERIES  # noqa: E402
from market_warehouse.resources.partitioning import ensure_partitions  # noqa: E402
from market_warehouse.resources.quality.rules import Rule, load_rules  # noqa: E402
from market_warehouse.resources.quality.scores import score_frame  # noqa: E402
from market_warehouse.resources.quality.split import split_frame  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402

NOW = datetime(2025, 1, 1, tzinfo=UTC)
CORE = (
    "close_not_null",
    "open_positive",
    "close_positive",
    "volume_non_negative",
    "high_ge_open",
    "high_ge_close",
    "low_le_open",
    "unique_key",
    "time_aligned_to_interval",
)


def make_frame(rows: int, series: int, broken: float, seed: int = 0) -> pd.DataFrame:
    """Candles with their price kind explicit (ohlcv's key since migration 0005), as the exchange pulls
    give them: without it the GX suite silently leaves out unique_key (24 expectations instead of 25)."""
    rng = np.random.default_rng(seed)
    per = rows // series
    start = pd.Timestamp("2024-01-01", tz="UTC")
    times = start + pd.to_timedelta(np.tile(np.arange(per), series), unit="min")
    symbols = np.repeat([f"S{i}/USDT" for i in range(series)], per)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, per * series)))
    open_ = np.roll(close, 1)
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": symbols,
            "interval": "1m",
            "price": "trade",
            "time": times,
            "open": open_,
            "high": np.maximum(open_, close) * 1.0005,
            "low": np.minimum(open_, close) * 0.9995,
            "close": close,
            "volume": rng.uniform(0, 10, per * series),
        }
    )
    n_bad = int(len(frame) * broken)
    bad = rng.choice(len(frame), size=n_bad, replace=False)
    third = n_bad // 3
    frame.loc[bad[:third], "volume"] = -1.0
    frame.loc[bad[third : 2 * third], "high"] = frame.loc[bad[third : 2 * third], "open"] * 0.9
    frame.loc[bad[2 * third :], "time"] += pd.Timedelta(seconds=7)
    return frame


def baseline(frame: pd.DataFrame) -> int:
    """The eight core checks as bare numpy masks: a floor, no typing, no messages, no split."""
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    ns = frame["time"].dt.as_unit("ns").astype("int64").to_numpy()
    fails = np.isnan(c) | (o <= 0) | (c <= 0) | (v < 0) | (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
    fails |= ns % 60_000_000_000 != 0
    fails |= frame.duplicated(["exchange", "symbol", "interval", "price", "time"]).to_numpy()
    return int(fails.sum())


def best(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return min(times), out


def write_path(rows: int, series: int, broken: float, database: str) -> None:
    """upsert_dataframe (no validation) vs load_frame (validation, scores, quarantine) on the same rows."""
    from market_warehouse.resources.warehouse.load import load_frame
    from market_warehouse.resources.warehouse.upsert import upsert_dataframe

    frame = make_frame(rows, series, broken, seed=1)
    clean = frame.loc[split_frame("ohlcv", frame, load_rules(None, "ohlcv"), now=NOW).good.index]
    url = server_url(database=database)
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            caps = detect(conn)
            ensure_partitions(conn, caps, TIMESERIES["ohlcv"], frame["time"].min(), frame["time"].max())
        print(
            f"\nWrite path: {len(frame):,} rows into {redact(url)} ({caps.backend.value}, {os.cpu_count()} CPUs)\n"
        )

        def empty() -> None:
            with engine.begin() as conn:
                conn.execute(bench_text("quality_truncate"))

        empty()
        began = time.perf_counter()
        upsert_dataframe(engine, "ohlcv", clean, batch_rows=50_000)
        t_upsert = time.perf_counter() - began
        began = time.perf_counter()
        upsert_dataframe(engine, "ohlcv", clean, batch_rows=50_000)
        t_upsert_again = time.perf_counter() - began
        empty()
        began = time.perf_counter()
        first = load_frame(engine, "ohlcv", frame, run_id="bench", now=NOW)
        t_load = time.perf_counter() - began
        began = time.perf_counter()
        again = load_frame(engine, "ohlcv", frame, run_id="bench-2", now=NOW)
        t_again = time.perf_counter() - began
        print("| write | rows | seconds | rows/s | × upsert | outcome |")
        print("|---|---:|---:|---:|---:|---|")
        lines = [
            (
                "upsert_dataframe (clean rows, no validation)",
                len(clean),
                t_upsert,
                f"{len(clean):,} inserted",
            ),
            ("upsert_dataframe (re-run)", len(clean), t_upsert_again, "all unchanged"),
            (
                "load_frame (first load)",
                len(frame),
                t_load,
                f"{first.inserted:,} inserted, {first.quarantined} quarantined, {first.anomalies} anomalies",
            ),
            (
                "load_frame (re-run)",
                len(frame),
                t_again,
                f"{again.unchanged:,} unchanged, {again.inserted} inserted",
            ),
        ]
        for name, n, seconds, outcome in lines:
            print(
                f"| {name} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} | {seconds / t_upsert:.2f} | {outcome} |"
            )
    finally:
        engine.dispose()
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--broken", type=float, default=0.001, help="share of rows broken")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-rows", type=int, default=200_000, help="rows of the write-path test; 0 skips")
    parser.add_argument(
        "--database", default="mw_bench_validation", help="scratch database of the write path"
    )
    args = parser.parse_args()

    frame = make_frame(args.rows, args.series, args.broken)
    rules = load_rules(None, "ohlcv")
    core: list[Rule] = [r for r in rules if r.name in CORE]

    began = time.perf_counter()
    from market_warehouse.resources.quality import expectations

    expectations._context()
    gx_startup = time.perf_counter() - began
    # Warm-up of GX's metric machinery on a small frame, as a long-running process would be.
    expectations.validate("ohlcv", frame.head(1000), rules, now=NOW)

    results = []
    t_base, n_base = best(lambda: baseline(frame), args.runs)
    results.append(("baseline (numpy, 8 core checks)", len(CORE) - 1, t_base, f"{n_base} failing rows"))
    t_split, split = best(lambda: split_frame("ohlcv", frame, rules, now=NOW), args.runs)
    results.append(
        ("split_frame (row-level, full suite)", len(rules), t_split, f"{len(split.rejected)} rows rejected")
    )
    t_gx, gx = best(lambda: expectations.validate("ohlcv", frame, rules, now=NOW), args.runs)
    stats = gx["statistics"]
    results.append(
        (
            "GX validate (full suite)",
            stats["evaluated_expectations"],
            t_gx,
            f"{stats['unsuccessful_expectations']} expectations failed",
        )
    )
    t_core, gx_core = best(lambda: expectations.validate("ohlcv", frame, core, now=NOW), args.runs)
    results.append(
        (
            "GX validate (core suite)",
            gx_core["statistics"]["evaluated_expectations"],
            t_core,
            f"{gx_core['statistics']['unsuccessful_expectations']} expectations failed",
        )
    )

    empty = pd.DataFrame()  # no stored history: a first load
    t_score, scored = best(
        lambda: score_frame("ohlcv", split.good, split.warnings, empty, now=NOW), args.runs
    )
    results.append(("score_frame (score + z-scores)", 2, t_score, f"{len(scored.anomalies)} anomalies"))

    print(
        f"\nValidation of {len(frame):,} OHLCV rows ({args.series} series, {args.broken:.1%} broken), best of {args.runs}"
    )
    print(f"GX import + ephemeral context: {gx_startup:.2f} s (once per process)\n")
    print("| step | rules / expectations | seconds | rows/s | × baseline | outcome |")
    print("|---|---:|---:|---:|---:|---|")
    for name, n, seconds, outcome in results:
        print(
            f"| {name} | {n} | {seconds:.3f} | {len(frame) / seconds:,.0f} | {seconds / t_base:.1f} | {outcome} |"
        )
    target = 2.0
    for name, _, seconds, _ in results[1:]:
        verdict = "within" if seconds <= target else "OVER"
        print(f"- {name}: {seconds:.2f} s, {verdict} the {target:.0f} s target")
    if args.load_rows:
        write_path(args.load_rows, args.series, args.broken, args.database)


if __name__ == "__main__":
    main()
