"""Archive layouts through the landing loader into the real warehouse: datasets and instruments per file,
counts (fetched = inserted + updated + unchanged + quarantined), checksums, ledger skips on re-run."""

from __future__ import annotations

import pandas as pd

from market_warehouse.resources.files.landing import load_landing_folder
from tests.archives_data import (
    NOW,
    agg_trades_csv,
    binance_trades_csv,
    candles,
    feather_bytes,
    freqtrade_trades,
    kline_csv,
    rows,
    tardis_trades_csv_gz,
    with_checksum,
    write,
    zipped,
)


def _trade_folder(root) -> None:
    write(root, "binance/XRP_ETH-trades.feather", feather_bytes(freqtrade_trades(5)))
    spot = "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip"
    start = int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)
    with_checksum(
        root, spot, zipped("BTCUSDT-trades-2025-01-01.csv", binance_trades_csv(6, start_ms=start, unit="us"))
    )
    agg = "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip"
    with_checksum(root, agg, zipped("BTCUSDT-aggTrades-2024-01-01.csv", agg_trades_csv(7)))
    bad = "data/futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2024-01-01.zip"
    with_checksum(root, bad, zipped("ETHUSDT-aggTrades-2024-01-01.csv", agg_trades_csv(3)), digest="0" * 64)
    write(root, "tardis/bybit_trades_2024-01-01_BTCUSD.csv.gz", tardis_trades_csv_gz("bybit", "BTCUSD", 4))


def test_trades_of_every_layout_load_into_market_trades_and_skip_on_rerun(engine, tmp_path):
    root = tmp_path / "landing"
    _trade_folder(root)
    report = load_landing_folder(engine, root, run_id="run-1", batch_rows=4, now=NOW)
    got = {f.path: (f.status, f.dataset, f.symbol, f.time_unit, f.fetched, f.inserted) for f in report.files}
    assert got == {
        "binance/XRP_ETH-trades.feather": ("loaded", "market_trades", "XRP/ETH", "ms", 5, 5),
        "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip":
            ("loaded", "market_trades", "BTC/USDT:USDT", "ms", 7, 7),
        "data/futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2024-01-01.zip":
            ("failed", None, None, None, 0, 0),
        "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip":
            ("loaded", "market_trades", "BTC/USDT", "us", 6, 6),
        "tardis/bybit_trades_2024-01-01_BTCUSD.csv.gz": ("loaded", "market_trades", "BTC/USD:BTC", "us", 4, 4),
    }  # fmt: skip
    failed = report.failures[0]
    assert "checksum mismatch: ETHUSDT-aggTrades-2024-01-01.zip.CHECKSUM says sha256 0000" in failed.error
    assert report.balanced and report.inserted == 22
    by_symbol = rows(engine, "SELECT exchange, symbol, count(*) FROM market_trades GROUP BY 1, 2 ORDER BY 2")
    assert by_symbol == [
        ("bybit", "BTC/USD:BTC", 4), ("binance", "BTC/USDT", 6), ("binance", "BTC/USDT:USDT", 7),
        ("binance", "XRP/ETH", 5),
    ]  # fmt: skip
    assert rows(engine, "SELECT count(*) FROM market_trades WHERE symbol LIKE 'ETH%'") == [
        (0,)
    ]  # nothing written
    first = rows(engine, "SELECT trade_id, side, is_buyer_maker, time FROM market_trades "
                         "WHERE symbol = 'BTC/USDT' ORDER BY time LIMIT 2")  # fmt: skip
    assert first == [
        ("500", "buy", False, pd.Timestamp("2025-01-01", tz="UTC")),
        ("501", "sell", True, pd.Timestamp("2025-01-01 00:00:00.1", tz="UTC")),
    ]

    again = load_landing_folder(engine, root, run_id="run-2", batch_rows=4, now=NOW)
    assert {f.path: f.status for f in again.files if f.status != "skipped"} == {
        "data/futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2024-01-01.zip": "failed"
    }
    assert again.fetched == 0


def test_a_reloaded_changed_file_updates_its_trades(engine, tmp_path):
    root = tmp_path / "landing"
    trades = freqtrade_trades(6)
    write(root, "binance/XRP_ETH-trades.feather", feather_bytes(trades))
    assert load_landing_folder(engine, root, run_id="run-1", now=NOW).inserted == 6
    trades.loc[2, "amount"] = 99.0
    trades.loc[2, "cost"] = trades.loc[2, "price"] * 99.0
    write(root, "binance/XRP_ETH-trades.feather", feather_bytes(trades))
    second = load_landing_folder(engine, root, run_id="run-2", now=NOW)
    assert (second.fetched, second.inserted, second.updated, second.unchanged) == (6, 0, 1, 5)
    assert rows(engine, "SELECT amount FROM market_trades WHERE trade_id = '1002'") == [(99.0,)]


def test_binance_klines_with_and_without_header_and_a_file_bigger_than_the_batch(engine, tmp_path):
    root = tmp_path / "landing"
    frame = candles(50)
    first = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    with_checksum(root, first, zipped("BTCUSDT-1m-2024-01-01.csv", kline_csv(frame.iloc[:25], header=False)))
    second = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-02.zip"
    write(root, second, zipped("BTCUSDT-1m-2024-01-02.csv", kline_csv(frame.iloc[25:], header=True)))
    report = load_landing_folder(engine, root, run_id="run-1", batch_rows=10, now=NOW)
    got = {f.path: (f.status, f.layout, f.archive, f.fetched, f.inserted) for f in report.files}
    assert got == {
        first: ("loaded", "zip:csv:binance-klines", "binance-vision:klines", 25, 25),
        second: ("loaded", "zip:csv:header", "binance-vision:klines", 25, 25),
    }
    assert rows(engine, "SELECT exchange, symbol, interval, count(*) FROM ohlcv GROUP BY 1, 2, 3") == [
        ("binance", "BTC/USDT", "1m", 50)
    ]


def test_an_unreadable_trade_is_quarantined_with_its_reason(engine, tmp_path):
    root = tmp_path / "landing"
    lines = binance_trades_csv(5).decode().splitlines()
    lines[1] = lines[1].replace("42001.0", "n/a", 1)
    relative = "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip"
    write(root, relative, zipped("BTCUSDT-trades-2024-01-01.csv", ("\n".join(lines) + "\n").encode()))
    report = load_landing_folder(engine, root, run_id="run-1", now=NOW)
    file = report.files[0]
    assert (file.status, file.fetched, file.inserted, file.quarantined) == ("partial", 5, 4, 1)
    assert rows(engine, "SELECT table_name, rule, message, row_data->>'trade_id' FROM quarantine") == [
        (
            "market_trades",
            "non_numeric",
            "BTCUSDT-trades-2024-01-01.csv: row 2: price='n/a' is not a finite number",
            "501",
        )
    ]
