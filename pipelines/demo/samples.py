"""The demo's sample historical files: the week before the window from the synthetic exchange, in four
layouts, plus one truncated file and a few bad rows (so the summary shows failure and quarantine)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from market_warehouse.pipelines.demo.report import DEMO_FOLDER


def _candles(exchange, symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> list[list]:
    """Closed candles of the synthetic exchange in [start, end): exactly what a pull would store."""
    rows: list[list] = []
    since = int(start.timestamp() * 1000)
    end_ms = int(end.timestamp() * 1000)
    while since < end_ms:
        page = [r for r in exchange.fetch_ohlcv(symbol, interval, since=since, limit=1000) if r[0] < end_ms]
        if not page:
            break
        rows.extend(page)
        since = int(page[-1][0]) + 1
    return rows


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _binance_klines(rows: list[list], interval_ms: int) -> bytes:
    """Binance's 12-field klines: open time, OHLCV as strings, close time, quote volume, trades, ..."""
    klines = [
        [
            int(r[0]),
            *(f"{v:.8f}" for v in r[1:6]),
            int(r[0]) + interval_ms - 1,
            f"{r[6] if len(r) > 6 and r[6] is not None else 0:.8f}",
            int(r[7]) if len(r) > 7 and r[7] is not None else 0,
            "0",
            "0",
            "0",
        ]
        for r in rows
    ]
    return json.dumps(klines, separators=(",", ":")).encode()


def _records_with_bad_rows(rows: list[list]) -> bytes:
    """Records with ISO times; three rows broken the ways real exports break (see the summary)."""
    records = [
        {"timestamp": _iso(r[0]), "open": r[1], "high": r[2], "low": r[3], "close": r[4], "volume": r[5]}
        for r in rows
    ]
    if len(records) > 30:
        records[10]["open"] = "n/a"  # unreadable number: quarantined by the parser
        records[20]["high"] = records[20]["low"] * 0.99  # high below low: the ohlcv rules quarantine it
        records[30]["volume"] = -abs(records[30]["volume"]) - 1  # negative volume
    return json.dumps(records, indent=1).encode()


def _split_orient(rows: list[list]) -> bytes:
    frame = pd.DataFrame(
        [r[:6] for r in rows], columns=["time", "open", "high", "low", "close", "volume"]
    ).astype({"time": "int64"})
    return frame.to_json(orient="split", index=False).encode()


def _gzip_ndjson(rows: list[list]) -> bytes:
    lines = "\n".join(
        json.dumps({"t": int(r[0]), "o": r[1], "h": r[2], "l": r[3], "c": r[4], "v": r[5]}) for r in rows
    )
    return gzip.compress((lines + "\n").encode(), mtime=0)  # mtime=0: same rows, same bytes


def sample_files(universe_path: str | None, window_start: str, history_days: int) -> dict[str, bytes]:
    """Relative path -> content of the demo's landed files (deterministic for a given window)."""
    from market_warehouse.resources.exchanges.client import build_exchange
    from market_warehouse.resources.exchanges.universe import load_universe

    universe = load_universe(universe_path)
    synthetic = [c for c in universe.exchanges if c.is_synthetic]
    if not synthetic:
        return {}
    config = synthetic[0]
    exchange = build_exchange(config)
    end = pd.Timestamp(window_start, tz="UTC")
    week, day = end - pd.Timedelta(days=history_days), end - pd.Timedelta(days=1)
    symbols = list(config.symbols)
    first, second = symbols[0], symbols[1 % len(symbols)]
    base = f"{DEMO_FOLDER}/exchange={config.name}"
    slug = {s: s.replace("/", "_").replace(":", "_") for s in symbols}
    hour_ms = 3_600_000
    files: dict[str, bytes] = {}
    if "1h" in config.intervals:
        files[f"{base}/{slug[first]}-1h-klines.json"] = _binance_klines(
            _candles(exchange, first, "1h", week, end), hour_ms
        )
        if second != first:
            files[f"{base}/{slug[second]}-1h-records.json"] = _records_with_bad_rows(
                _candles(exchange, second, "1h", week, end)
            )
    if "1m" in config.intervals:
        files[f"{base}/{slug[first]}-1m.ndjson.gz"] = _gzip_ndjson(_candles(exchange, first, "1m", day, end))
        if second != first:
            files[f"{base}/{slug[second]}-1m-split.json"] = _split_orient(
                _candles(exchange, second, "1m", day, end)
            )
    # A download cut short: not JSON at all. It fails alone, is reported, and is retried on every run.
    files[f"{base}/{slug[first]}-4h-truncated.json"] = b'[[1704067200000, "42000.1", "42100", "41'
    return files


def write_sample_files(folder: Path, files: dict[str, bytes]) -> tuple[int, int]:
    """Write the files whose bytes differ (atomically, by rename); (written, unchanged)."""
    written = unchanged = 0
    for relative, content in files.items():
        path = folder / relative
        if path.is_file() and path.read_bytes() == content:
            unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")  # hidden: the loader and sensor ignore it
        partial.write_bytes(content)
        partial.replace(path)
        written += 1
    return written, unchanged
