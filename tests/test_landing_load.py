"""Loading a landing folder into the real warehouse: ledger, skips, reloads, failures, quarantine, totals."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.files import ledger
from market_warehouse.resources.files.landing import load_landing_folder, summary

T0_MS = int(pd.Timestamp("2024-01-01T00:00:00Z").timestamp() * 1000)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def klines(n: int, *, step_ms: int = MINUTE_MS, start_ms: int = T0_MS, bump: float = 0.0) -> list[list]:
    """Binance 12-field klines; `bump` shifts every price (a corrected version of the same candles)."""
    rows = []
    for i in range(n):
        o = 100.0 + i + bump
        rows.append(
            [start_ms + i * step_ms, str(o), str(o + 2), str(o - 1), str(o + 1), "10.5",
             start_ms + (i + 1) * step_ms - 1, "1050.0", 7, "5.0", "500.0", "0"]
        )  # fmt: skip
    return rows


def records(n: int, *, step_ms: int = HOUR_MS) -> list[dict]:
    return [
        {"timestamp": pd.Timestamp(T0_MS + i * step_ms, unit="ms", tz="UTC").isoformat(), "open": 10 + i,
         "high": 12 + i, "low": 9 + i, "close": 11 + i, "volume": 3}
        for i in range(n)
    ]  # fmt: skip


def write(folder: Path, relative: str, content, *, gz: bool = False) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def scalar(engine: sa.Engine, query: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "landing"
    write(root, "binance/BTC_USDT-1m.json", klines(5))
    write(root, "binance/ETH_USDT-1h.json.gz", {"data": records(4)}, gz=True)
    write(root, "binance/broken-1m.json", b'[[1704067200000, "1", "2"')  # truncated mid-row
    write(root, "binance/SOL_USDT-1m.json", b"")
    # One unreadable price (parser quarantines it) and one candle with high < low (the rules quarantine it).
    bad = klines(6)
    bad[2][1] = "n/a"
    bad[4][2] = "90.0"
    write(root, "okx/ADA-USDT-1m.json", bad)
    (root / ".hidden.json").write_bytes(b"not landed")
    (root / "binance" / "XRP_USDT-1m.json.part").write_bytes(b"[[")
    return root


def test_good_corrupt_and_empty_files_each_get_their_own_outcome(engine, folder):
    report = load_landing_folder(engine, folder, run_id="run-1")
    by_path = {f.path: f for f in report.files}
    assert sorted(by_path) == [
        "binance/BTC_USDT-1m.json",
        "binance/ETH_USDT-1h.json.gz",
        "binance/SOL_USDT-1m.json",
        "binance/broken-1m.json",
        "okx/ADA-USDT-1m.json",
    ]  # fmt: skip — hidden files and partial downloads are not landed data
    assert {p: f.status for p, f in by_path.items()} == {
        "binance/BTC_USDT-1m.json": "loaded",
        "binance/ETH_USDT-1h.json.gz": "loaded",
        "binance/SOL_USDT-1m.json": "empty",
        "binance/broken-1m.json": "failed",
        "okx/ADA-USDT-1m.json": "partial",
    }
    broken = by_path["binance/broken-1m.json"]
    assert broken.error == "binance/broken-1m.json: invalid JSON at line 1 column 26: Expecting ',' delimiter"
    assert (folder / "binance/broken-1m.json").exists()  # left in place

    btc = by_path["binance/BTC_USDT-1m.json"]
    assert (btc.layout, btc.time_unit, btc.exchange, btc.symbol, btc.interval) == (
        "binance-klines", "ms", "binance", "BTC/USDT", "1m"
    )  # fmt: skip
    assert (btc.fetched, btc.inserted, btc.quarantined) == (5, 5, 0)
    eth = by_path["binance/ETH_USDT-1h.json.gz"]
    assert (eth.layout, eth.time_unit, eth.inserted) == ("gzip:data:records", "iso", 4)
    ada = by_path["okx/ADA-USDT-1m.json"]
    assert (ada.fetched, ada.inserted, ada.quarantined) == (6, 4, 2)
    assert ada.quarantine_reasons == {"high_ge_open": 1, "non_numeric": 1}

    # Totals balance, per file and overall.
    assert report.balanced
    assert report.fetched == report.inserted + report.updated + report.unchanged + report.quarantined == 15
    totals = summary(report)
    assert totals["files_seen"] == 5 and totals["files_loaded"] == 3
    assert (totals["files_failed"], totals["files_empty"], totals["files_skipped"]) == (1, 1, 0)
    assert totals["min_time"] == "2024-01-01T00:00:00+00:00"
    assert totals["max_time"] == "2024-01-01T03:00:00+00:00"

    assert scalar(engine, "SELECT count(*) FROM ohlcv") == 13
    assert scalar(engine, "SELECT count(DISTINCT source) FROM ohlcv") == 3
    assert scalar(engine, "SELECT source FROM ohlcv WHERE symbol = 'ETH/USDT' LIMIT 1") == (
        "file:binance/ETH_USDT-1h.json.gz"
    )
    with engine.connect() as conn:
        quarantined = conn.execute(
            sa.text("SELECT rule, message, source, row_data, run_id FROM quarantine ORDER BY rule")
        ).all()
        entries = ledger.latest_entries(conn)
    assert [q.rule for q in quarantined] == ["high_ge_open", "non_numeric"]
    unreadable = quarantined[1]
    assert unreadable.message == "row 3: open='n/a' is not a finite number"
    assert unreadable.source == "file:okx/ADA-USDT-1m.json" and unreadable.run_id == "run-1"
    assert unreadable.row_data["open"] == "n/a" and unreadable.row_data["symbol"] == "ADA/USDT"
    assert unreadable.row_data["time"] == "2024-01-01T00:02:00+00:00"
    assert {p: (e.status, e.rows_loaded, e.rows_quarantined) for p, e in entries.items()} == {
        "binance/BTC_USDT-1m.json": ("loaded", 5, 0),
        "binance/ETH_USDT-1h.json.gz": ("loaded", 4, 0),
        "binance/SOL_USDT-1m.json": ("empty", 0, 0),
        "binance/broken-1m.json": ("failed", 0, 0),
        "okx/ADA-USDT-1m.json": ("partial", 4, 2),
    }
    assert entries["binance/broken-1m.json"].error.endswith(
        "invalid JSON at line 1 column 26: Expecting ',' delimiter"
    )
    assert (
        entries["binance/ETH_USDT-1h.json.gz"].sha256
        == ledger.fingerprint(folder / "binance/ETH_USDT-1h.json.gz").sha256
    )


def test_second_load_of_the_same_folder_writes_nothing(any_engine, folder):
    engine = any_engine  # plain PostgreSQL partitions and TimescaleDB hypertables (when configured)
    load_landing_folder(engine, folder, run_id="run-1")
    before = scalar(engine, "SELECT max(xmin::text::bigint) FROM ohlcv")
    quarantine_rows = scalar(engine, "SELECT count(*) FROM quarantine")
    again = load_landing_folder(engine, folder, run_id="run-2")
    statuses = {f.path: f.status for f in again.files}
    assert statuses == {
        "binance/BTC_USDT-1m.json": "skipped",
        "binance/ETH_USDT-1h.json.gz": "skipped",
        "binance/SOL_USDT-1m.json": "skipped",
        "binance/broken-1m.json": "failed",  # retried: the cause may have been outside the file
        "okx/ADA-USDT-1m.json": "skipped",
    }
    assert (again.fetched, again.inserted, again.updated, again.unchanged, again.quarantined) == (
        0,
        0,
        0,
        0,
        0,
    )
    # No row was rewritten (same transaction ids) and nothing new was quarantined.
    assert scalar(engine, "SELECT max(xmin::text::bigint) FROM ohlcv") == before
    assert scalar(engine, "SELECT count(*) FROM quarantine") == quarantine_rows
    assert scalar(engine, "SELECT count(*) FROM ingest_files") == 5


def test_a_changed_file_is_reloaded_and_vanished_rows_are_kept(any_engine, folder):
    engine = any_engine  # plain PostgreSQL partitions and TimescaleDB hypertables (when configured)
    load_landing_folder(engine, folder, run_id="run-1")
    path = folder / "binance/BTC_USDT-1m.json"
    old = ledger.fingerprint(path)
    rows = klines(5)
    rows[1] = klines(2, bump=0.5)[1]  # corrected prices of candle 2
    rows = rows[1:] + klines(6)[5:]  # candle 1 no longer in the file, candle 6 new
    path.write_text(json.dumps(rows))
    report = load_landing_folder(engine, folder, run_id="run-2")
    btc = next(f for f in report.files if f.path == "binance/BTC_USDT-1m.json")
    assert btc.status == "loaded"
    assert (btc.fetched, btc.inserted, btc.updated, btc.unchanged, btc.quarantined) == (5, 1, 1, 3, 0)
    assert scalar(engine, "SELECT count(*) FROM ohlcv WHERE symbol = 'BTC/USDT'") == 6  # candle 1 still there
    assert scalar(
        engine, "SELECT open FROM ohlcv WHERE symbol = 'BTC/USDT' AND time = '2024-01-01T00:01:00Z'"
    ) == pytest.approx(101.5)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT sha256, status FROM ingest_files WHERE path = :p ORDER BY loaded_at"),
            {"p": "binance/BTC_USDT-1m.json"},
        ).all()
    assert [v.sha256 for v in versions] == [old.sha256, ledger.fingerprint(path).sha256]
    assert {v.status for v in versions} == {"loaded"}
    # Back to the first version: it is not the latest any more, so it is loaded again (restoring its prices).
    path.write_text(json.dumps(klines(5)))
    restored = next(
        f for f in load_landing_folder(engine, folder).files if f.path == "binance/BTC_USDT-1m.json"
    )
    assert (restored.status, restored.updated, restored.unchanged) == ("loaded", 1, 4)


def test_a_fixed_file_loads_and_leaves_no_failure(engine, folder):
    load_landing_folder(engine, folder)
    with engine.connect() as conn:
        assert [e.path for e in ledger.failed_entries(conn, ["binance/broken-1m.json"])] == [
            "binance/broken-1m.json"
        ]
    write(folder, "binance/broken-1m.json", klines(3, start_ms=T0_MS + 10 * HOUR_MS))
    report = load_landing_folder(engine, folder)
    fixed = next(f for f in report.files if f.path == "binance/broken-1m.json")
    assert fixed.status == "failed"  # named 'broken': no symbol in the name nor in the rows
    assert "no symbol for the candles" in fixed.error
    (folder / "binance/broken-1m.json").rename(folder / "binance/BNB_USDT-1m.json")
    report = load_landing_folder(engine, folder)
    assert next(f for f in report.files if f.path == "binance/BNB_USDT-1m.json").inserted == 3
    with engine.connect() as conn:
        assert ledger.failed_entries(conn, [f.path for f in report.files]) == []


def test_a_bad_file_among_many_does_not_stop_the_others(engine, tmp_path):
    root = tmp_path / "landing"
    write(root, "binance/AAA_USDT-1m.json", klines(3))
    write(root, "binance/BBB_USDT-1h.json", klines(3))  # minute candles in a file named 1h
    write(
        root, "binance/CCC_USDT-1m.json", [dict(r, symbol="XYZ/USDT") for r in records(3, step_ms=MINUTE_MS)]
    )
    write(root, "binance/DDD_USDT-1m.json", [{"timestamp": "2024-01-01T00:00:00", "open": 1}] * 2)
    write(root, "binance/EEE_USDT-1m.json", klines(3))
    report = load_landing_folder(engine, root)
    failures = {f.path: f.error for f in report.failures}
    assert failures == {
        "binance/BBB_USDT-1h.json": "binance/BBB_USDT-1h.json: binance BBB/USDT: interval '1h' (the path) does "
        "not match the data, whose median spacing between candles is 1m (60 s)",
        "binance/CCC_USDT-1m.json": "binance/CCC_USDT-1m.json: symbol in the file ('XYZ/USDT') disagrees with "
        "the path ('CCC/USDT')",
        "binance/DDD_USDT-1m.json": "binance/DDD_USDT-1m.json: no high, low, close, volume field(s) in the "
        "records rows (fields: timestamp, open)",
    }
    assert report.loaded == 2 and report.inserted == 6
    assert scalar(engine, "SELECT count(*) FROM ohlcv") == 6


def test_naive_times_load_once_the_zone_is_declared(engine, tmp_path):
    root = tmp_path / "landing"
    naive = [dict(r, timestamp=r["timestamp"].replace("+00:00", "")) for r in records(3)]
    write(root, "binance/ETH_USDT-1h.json", naive)
    first = load_landing_folder(engine, root).files[0]
    assert first.status == "failed" and "ISO times without a zone" in first.error
    second = load_landing_folder(engine, root, default_timezone="UTC").files[0]  # failed files are retried
    assert (second.status, second.inserted) == ("loaded", 3)
    assert scalar(engine, "SELECT min(time) FROM ohlcv") == pd.Timestamp("2024-01-01T00:00:00Z")


def test_open_candles_are_quarantined_not_stored(engine, tmp_path):
    root = tmp_path / "landing"
    now = pd.Timestamp("2024-01-01T00:03:30Z").to_pydatetime()
    write(root, "binance/BTC_USDT-1m.json", klines(4))  # the 4th candle (00:03) closes at 00:04
    report = load_landing_folder(engine, root, now=now)
    assert (report.inserted, report.quarantined) == (3, 1)
    assert report.quarantine_reasons == {"time_not_future": 1}
    assert report.balanced


def test_missing_folder_is_an_error(engine, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_landing_folder(engine, tmp_path / "nowhere")
