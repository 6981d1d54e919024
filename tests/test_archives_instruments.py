"""Spot and futures files of one pair in freqtrade's and Binance Vision's layouts, through the landing
loader into the warehouse (issues 13 and 14): spot candles, the perpetual's trade candles, its mark candles
and its funding rates are distinct series; none overwrites another, and a re-run skips every file. On
PostgreSQL, TimescaleDB full and Apache-only."""

from __future__ import annotations

import pandas as pd
import pytest

from market_warehouse.resources.files.landing import load_landing_folder
from market_warehouse.resources.files.symbols import SymbolError, instrument_fields
from market_warehouse.resources.warehouse.ops.instruments import get_instruments, upsert_instruments
from tests.archives_data import (
    NOW,
    T0,
    candles,
    feather_bytes,
    freqtrade_funding,
    funding_csv,
    kline_csv,
    rows,
    tardis_ticker_csv_gz,
    with_checksum,
    write,
    zipped,
)


def test_spot_perpetual_mark_and_funding_of_one_pair_stay_apart(any_engine, tmp_path):
    root = tmp_path / "landing"
    # Same pair, same hours, different prices: an overwrite would show in the stored closes.
    write(root, "binance/XRP_USDT-1h.feather", feather_bytes(candles(24, step="1h", base=100.0)))
    write(
        root,
        "binance/futures/XRP_USDT_USDT-1h-futures.feather",
        feather_bytes(candles(24, step="1h", base=110.0)),
    )
    write(
        root,
        "binance/futures/XRP_USDT_USDT-1h-mark.feather",
        feather_bytes(candles(24, step="1h", base=120.0)),
    )
    write(root, "binance/futures/XRP_USDT_USDT-8h-funding_rate.feather",
          feather_bytes(freqtrade_funding([0.0001, -0.00005, 0.0002])))  # fmt: skip
    report = load_landing_folder(any_engine, root, run_id="run-1", batch_rows=10, now=NOW)
    assert report.failed == 0 and report.balanced, [f.error for f in report.failures]
    got = {f.path: (f.dataset, f.symbol, f.price, f.inserted) for f in report.files}
    assert got == {
        "binance/XRP_USDT-1h.feather": ("ohlcv", "XRP/USDT", "trade", 24),
        "binance/futures/XRP_USDT_USDT-1h-futures.feather": ("ohlcv", "XRP/USDT:USDT", "trade", 24),
        "binance/futures/XRP_USDT_USDT-1h-mark.feather": ("ohlcv", "XRP/USDT:USDT", "mark", 24),
        "binance/futures/XRP_USDT_USDT-8h-funding_rate.feather": ("funding_rates", "XRP/USDT:USDT", None, 3),
    }
    series = rows(
        any_engine,
        "SELECT symbol, price, count(*), min(close) FROM ohlcv GROUP BY symbol, price ORDER BY symbol, price",
    )
    assert series == [("XRP/USDT", "trade", 24, 101.0), ("XRP/USDT:USDT", "mark", 24, 121.0),
                      ("XRP/USDT:USDT", "trade", 24, 111.0)]  # fmt: skip
    funding = rows(any_engine, "SELECT symbol, time, rate, interval FROM funding_rates ORDER BY time")
    assert funding == [
        ("XRP/USDT:USDT", T0, 0.0001, "8h"),
        ("XRP/USDT:USDT", T0 + pd.Timedelta(hours=8), -0.00005, "8h"),
        ("XRP/USDT:USDT", T0 + pd.Timedelta(hours=16), 0.0002, "8h"),
    ]
    again = load_landing_folder(any_engine, root, run_id="run-2", now=NOW)
    assert again.skipped == 4 and again.fetched == 0


def test_binance_vision_mark_klines_and_funding_rates(any_engine, tmp_path):
    root = tmp_path / "landing"
    trade = "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    mark = "data/futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    funding = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"
    with_checksum(
        root, trade, zipped("BTCUSDT-1m-2024-01-01.csv", kline_csv(candles(30, base=42_000), header=True))
    )
    with_checksum(
        root, mark, zipped("BTCUSDT-1m-2024-01-01.csv", kline_csv(candles(30, base=42_005), header=False))
    )
    with_checksum(
        root, funding, zipped("BTCUSDT-fundingRate-2024-01.csv", funding_csv([1e-4, 3e-4], hours=4))
    )
    report = load_landing_folder(any_engine, root, run_id="run-1", now=NOW)
    assert report.failed == 0 and report.inserted == 30 + 30 + 2
    assert rows(any_engine, "SELECT price, count(*), min(open) FROM ohlcv WHERE symbol = 'BTC/USDT:USDT' "
                        "GROUP BY price ORDER BY price") == [("mark", 30, 42_005.0), ("trade", 30, 42_000.0)]  # fmt: skip
    assert rows(any_engine, "SELECT rate, interval FROM funding_rates ORDER BY time") == [
        (1e-4, "4h"),
        (3e-4, "4h"),
    ]


def test_tardis_derivative_ticker_gives_the_funding_paid_with_mark_and_index_price(engine, tmp_path):
    root = tmp_path / "landing"
    write(root, "tardis/binance-futures_derivative_ticker_2024-01-01_BTCUSDT.csv.gz",
          tardis_ticker_csv_gz("binance-futures", "BTCUSDT"))  # fmt: skip
    report = load_landing_folder(engine, root, run_id="run-1", now=NOW)
    assert [(f.status, f.dataset, f.symbol, f.time_unit) for f in report.files] == [
        ("loaded", "funding_rates", "BTC/USDT:USDT", "us")
    ]
    assert rows(
        engine, "SELECT exchange, time, rate, mark_price, index_price FROM funding_rates ORDER BY time"
    ) == [
        ("binance", T0 + pd.Timedelta(hours=8), 0.00012, 42_002.0, 41_991.0),
        ("binance", T0 + pd.Timedelta(hours=16), 0.00025, 42_002.0, 41_991.0),
    ]


def _instruments(engine, exchange: str) -> dict[str, tuple]:
    with engine.connect() as conn:
        found = get_instruments(conn, exchange=exchange)
    return {
        i.symbol: (i.type, i.base, i.quote, i.settle, i.linear, i.inverse, i.active, i.tick_size,
                   i.first_seen, i.last_seen)
        for i in found
    }  # fmt: skip


def test_loaded_files_fill_instruments_keeping_the_exchanges_flags(engine, tmp_path):
    root = tmp_path / "landing"
    write(root, "binance/XRP_USDT-1h.feather", feather_bytes(candles(24, step="1h", base=100.0)))
    write(root, "binance/futures/XRP_USDT_USDT-1h-futures.feather",
          feather_bytes(candles(12, step="1h", base=110.0)))  # fmt: skip
    dry = load_landing_folder(engine, root, run_id="dry", now=NOW, dry_run=True)
    assert dry.failed == 0 and _instruments(engine, "binance") == {}
    # The exchange already listed the perpetual, delisted: a file must not re-activate it nor drop its tick.
    later = T0 + pd.Timedelta(days=30)
    with engine.begin() as conn:
        upsert_instruments(conn, [{"exchange": "binance", "symbol": "XRP/USDT:USDT", "type": "swap",
                                   "base": "XRP", "quote": "USDT", "settle": "USDT", "linear": True,
                                   "inverse": False, "tick_size": 0.0001, "active": False,
                                   "first_seen": later, "last_seen": later}])  # fmt: skip
    report = load_landing_folder(engine, root, run_id="run-1", now=NOW)
    assert report.failed == 0 and report.loaded == 2, [f.error for f in report.failures]
    expected = {
        "XRP/USDT": ("spot", "XRP", "USDT", None, None, None, True, None, T0, T0 + pd.Timedelta(hours=23)),
        "XRP/USDT:USDT": ("swap", "XRP", "USDT", "USDT", True, False, False, 0.0001, T0, later),
    }
    assert _instruments(engine, "binance") == expected
    again = load_landing_folder(engine, root, run_id="run-2", now=NOW)
    assert again.skipped == 2 and _instruments(engine, "binance") == expected


def test_a_unified_symbol_tells_its_instrument_fields():
    spot, inverse = instrument_fields("BTC/USDT"), instrument_fields("BTC/USD:BTC")
    dated, option = (
        instrument_fields("BTC/USDT:USDT-261225"),
        instrument_fields("BTC/USD:BTC-261225-100000-C"),
    )
    assert (spot["type"], spot["settle"], spot["linear"]) == ("spot", None, None)
    assert (inverse["type"], inverse["linear"], inverse["inverse"]) == ("swap", False, True)
    assert (dated["type"], dated["linear"], dated["expiry"]) == (
        "future",
        True,
        pd.Timestamp("2026-12-25", tz="UTC"),
    )
    assert (option["type"], option["settle"], option["strike"], option["option_type"]) == (
        "option", "BTC", 100_000.0, "call")  # fmt: skip
    with pytest.raises(SymbolError, match="not a ccxt unified symbol"):
        instrument_fields("BTCUSDT")
