"""`market-warehouse load PATH...` in-process (click's CliRunner) against the embedded warehouse: a
freqtrade folder and Binance Vision files, the dry run (reads, writes nothing), the summary, exit codes
and the ledger skipping unchanged files on a second run."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from market_warehouse.pipelines.cli import cli
from tests.archives_data import (
    T0,
    agg_trades_csv,
    candles,
    feather_bytes,
    freqtrade_trades,
    kline_csv,
    with_checksum,
    write,
    zipped,
)

KLINES = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
AGG = "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip"


@pytest.fixture
def warehouse_env(db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    monkeypatch.setenv("MW_NOW", "2026-01-01T00:00:00+00:00")


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _history(root) -> None:
    write(root / "freqtrade", "binance/BTC_USDT-1m.feather", feather_bytes(candles(30)))
    write(root / "freqtrade", "binance/BTC_USDT-trades.feather", feather_bytes(freqtrade_trades(4)))
    with_checksum(
        root / "vision",
        KLINES,
        zipped(
            "BTCUSDT-1m-2024-01-01.csv",
            kline_csv(candles(12, start=T0 + pd.Timedelta(hours=1)), header=False),
        ),
    )
    with_checksum(root / "vision", AGG, zipped("BTCUSDT-aggTrades-2024-01-01.csv", agg_trades_csv(5)))


def test_dry_run_says_what_each_file_is_and_writes_nothing(engine, warehouse_env, tmp_path):
    _history(tmp_path)
    result = CliRunner().invoke(
        cli,
        ["load", str(tmp_path / "freqtrade"), str(tmp_path / "vision" / AGG), "--dry-run", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:4]}
    assert lines["binance/BTC_USDT-1m.feather"][1:8] == [
        "dry-run", "ohlcv", "freqtrade:spot:feather", "binance", "BTC/USDT", "trade", "1m",
    ]  # fmt: skip
    assert lines["binance/BTC_USDT-1m.feather"][8] == "30"
    assert lines["binance/BTC_USDT-trades.feather"][1:6] == [
        "dry-run", "market_trades", "freqtrade:trades:feather", "binance", "BTC/USDT",
    ]  # fmt: skip
    agg = lines["BTCUSDT-aggTrades-2024-01-01.zip"]
    assert agg[1:6] == [
        "dry-run",
        "market_trades",
        "binance-vision:aggTrades:zip:csv:header",
        "binance",
        "BTC/USDT:USDT",
    ]
    assert "2024-01-01 00:00:00 / 2024-01-01 00:00:01" in result.output  # the time range
    assert "3 files read (dry run, nothing written): 0 failed" in result.output
    assert count(engine, "ohlcv") == count(engine, "market_trades") == count(engine, "ingest_files") == 0


def test_load_stores_every_file_then_skips_them_and_fails_on_a_bad_checksum(engine, warehouse_env, tmp_path):
    _history(tmp_path)
    runner = CliRunner()
    first = runner.invoke(
        cli, ["load", str(tmp_path / "freqtrade"), str(tmp_path / "vision"), "--batch-rows", "7"]
    )
    assert first.exit_code == 0, first.output
    assert "4 files loaded: 0 failed, 0 unchanged since loaded; 51 rows, 51 inserted" in first.output
    assert (count(engine, "ohlcv"), count(engine, "market_trades")) == (30 + 12, 4 + 5)
    again = runner.invoke(
        cli, ["load", str(tmp_path / "freqtrade"), str(tmp_path / "vision"), "--no-progress"]
    )
    assert (
        again.exit_code == 0 and "4 files loaded: 0 failed, 4 unchanged since loaded; 0 rows" in again.output
    )
    bad = "data/futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2024-01-01.zip"
    with_checksum(tmp_path / "vision", bad, zipped("e.csv", agg_trades_csv(3)), digest="f" * 64)
    failed = runner.invoke(cli, ["load", str(tmp_path / "vision" / bad), "--no-progress"])
    assert failed.exit_code == 1
    assert "failed: ETHUSDT-aggTrades-2024-01-01.zip: checksum mismatch" in failed.output
    assert count(engine, "market_trades") == 9
