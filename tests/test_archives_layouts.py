"""Known archive layouts read without a database: the symbol mapping to ccxt unified symbols, each
layout's dataset / instrument / price kind from its path, and the rows of trades and funding files."""

from __future__ import annotations

import hashlib

import orjson
import pandas as pd
import pytest

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.archives import identify
from market_warehouse.resources.files.checksums import checksum_problem
from market_warehouse.resources.files.layouts import parse_file, read_file
from market_warehouse.resources.files.readers import json_stream
from market_warehouse.resources.files.symbols import (
    SymbolError,
    binance_symbol,
    freqtrade_symbol,
    tardis_instrument,
)
from tests.archives_data import (
    T0,
    T0_MS,
    agg_trades_csv,
    binance_trades_csv,
    candles,
    feather_bytes,
    freqtrade_funding,
    freqtrade_trades,
    funding_csv,
    kline_csv,
    tardis_ticker_csv_gz,
    tardis_trades_csv_gz,
    with_checksum,
    write,
    zipped,
)

# --------------------------------------------------------------------------------------------------------
# Symbols
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "futures", "unified"),
    [
        ("BTC_USDT", False, "BTC/USDT"),
        ("BTC_USDT_USDT", True, "BTC/USDT:USDT"),
        ("ETH_USD_ETH", True, "ETH/USD:ETH"),
        ("BTC_USDT_USDT_261225", True, "BTC/USDT:USDT-261225"),
        ("1000SHIB_USDT_USDT", True, "1000SHIB/USDT:USDT"),
    ],
)
def test_freqtrade_pairs(pair, futures, unified):
    assert freqtrade_symbol(pair, futures=futures) == unified


@pytest.mark.parametrize(
    ("name", "market", "unified"),
    [
        ("BTCUSDT", "spot", "BTC/USDT"),
        ("ETHBTC", "spot", "ETH/BTC"),
        ("BTCFDUSD", "spot", "BTC/FDUSD"),  # not BTCFD/USD: the longest known quote
        ("BTCUSDT", "um", "BTC/USDT:USDT"),
        ("ETHUSDC", "um", "ETH/USDC:USDC"),
        ("BTCUSDT_261225", "um", "BTC/USDT:USDT-261225"),
        ("BTCUSD_PERP", "cm", "BTC/USD:BTC"),
        ("BTCUSD_261225", "cm", "BTC/USD:BTC-261225"),
    ],
)
def test_binance_symbols(name, market, unified):
    assert binance_symbol(name, market) == unified


@pytest.mark.parametrize(
    ("name", "market", "why"),
    [
        ("XYZABC", "um", "ambiguous: no known quote currency"),
        ("BUSD", "spot", "ambiguous: .*the quote USD leaves the base 'B'"),
        ("BTCUSD", "um", "not a USDⓈ-M settle currency"),
        ("BTCUSD", "cm", "expected _PERP or a delivery date"),
        ("BTCUSDT_PERP", "cm", "quoted in USD, not USDT"),
        ("BTCUSDT_NEXT", "um", "neither a perpetual nor a YYMMDD"),
    ],
)
def test_binance_names_that_cannot_be_told_fail_with_the_reason(name, market, why):
    with pytest.raises(SymbolError, match=why):
        binance_symbol(name, market)


def test_freqtrade_futures_pair_without_settle_fails():
    with pytest.raises(SymbolError, match="has no settle currency"):
        freqtrade_symbol("BTC_USDT", futures=True)


@pytest.mark.parametrize(
    ("exchange", "name", "expected"),
    [
        ("binance-futures", "BTCUSDT", ("binance", "BTC/USDT:USDT")),
        ("binance-delivery", "ETHUSD_PERP", ("binance", "ETH/USD:ETH")),
        ("deribit", "BTC-PERPETUAL", ("deribit", "BTC/USD:BTC")),
        ("deribit", "BTC-27DEC24", ("deribit", "BTC/USD:BTC-241227")),
        ("okex-swap", "BTC-USDT-SWAP", ("okx", "BTC/USDT:USDT")),
        ("bitmex", "XBTUSD", ("bitmex", "BTC/USD:BTC")),
        ("bybit", "BTCUSD", ("bybit", "BTC/USD:BTC")),
    ],
)
def test_tardis_instruments(exchange, name, expected):
    assert tardis_instrument(exchange, name) == expected


# --------------------------------------------------------------------------------------------------------
# Layouts by path
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("user_data/data/binance/BTC_USDT-1h.feather", ("ohlcv", "binance", "BTC/USDT", "1h", "trade")),
        ("binance/futures/XRP_USDT_USDT-1h-futures.json.gz", ("ohlcv", "binance", "XRP/USDT:USDT", "1h", "trade")),
        ("binance/futures/XRP_USDT_USDT-1h-mark.feather", ("ohlcv", "binance", "XRP/USDT:USDT", "1h", "mark")),
        ("binance/futures/XRP_USDT_USDT-1h-index.parquet", ("ohlcv", "binance", "XRP/USDT:USDT", "1h", "index")),
        ("binance/futures/XRP_USDT_USDT-1h-premiumIndex.feather",
         ("ohlcv", "binance", "XRP/USDT:USDT", "1h", "premium_index")),
        ("binance/futures/XRP_USDT_USDT-8h-funding_rate.feather",
         ("funding_rates", "binance", "XRP/USDT:USDT", "8h", None)),
        ("kraken/ETH_EUR-1Mo.json", ("ohlcv", "kraken", "ETH/EUR", "1M", "trade")),
        ("binance/BTC_USDT-trades.json.gz", ("market_trades", "binance", "BTC/USDT", None, None)),
        ("binance/futures/BTC_USDT_USDT-trades.feather", ("market_trades", "binance", "BTC/USDT:USDT", None, None)),
        ("data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip", ("ohlcv", "binance", "BTC/USDT", "1m", "trade")),
        ("data/futures/um/daily/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip",
         ("ohlcv", "binance", "BTC/USDT:USDT", "1h", "mark")),
        ("data/futures/um/daily/premiumIndexKlines/BTCUSDT/5m/BTCUSDT-5m-2024-01-01.zip",
         ("ohlcv", "binance", "BTC/USDT:USDT", "5m", "premium_index")),
        ("data/futures/cm/daily/indexPriceKlines/BTCUSD/1m/BTCUSD-1m-2024-01-01.zip",
         ("ohlcv", "binance", "BTC/USD:BTC", "1m", "index")),
        ("data/futures/cm/monthly/klines/BTCUSD_261225/1d/BTCUSD_261225-1d-2024-01.zip",
         ("ohlcv", "binance", "BTC/USD:BTC-261225", "1d", "trade")),
        ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip",
         ("market_trades", "binance", "BTC/USDT", None, None)),
        ("data/futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2024-01-01.zip",
         ("market_trades", "binance", "ETH/USDT:USDT", None, None)),
        ("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
         ("funding_rates", "binance", "BTC/USDT:USDT", None, None)),
        ("tardis/binance-futures_trades_2024-01-01_BTCUSDT.csv.gz",
         ("market_trades", "binance", "BTC/USDT:USDT", None, None)),
        ("deribit_derivative_ticker_2024-01-01_BTC-PERPETUAL.csv.gz",
         ("funding_rates", "deribit", "BTC/USD:BTC", None, None)),
    ],
)  # fmt: skip
def test_known_layouts_tell_dataset_instrument_interval_and_price_kind(path, expected):
    kind = identify(path)
    assert (kind.dataset, kind.exchange, kind.symbol, kind.interval, kind.price) == expected
    absolute = identify(f"/srv/history/{path}")  # matched from the end: an absolute path works alike
    assert (absolute.dataset, absolute.symbol, absolute.price) == (kind.dataset, kind.symbol, kind.price)


@pytest.mark.parametrize("path", ["binance/BTCUSDT_1h.json", "BTC_USDT-1m.json", "exports/prices.csv"])
def test_other_paths_follow_no_known_layout(path):
    assert identify(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        (
            "data/spot/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-01-01.zip",
            "data type 'bookTicker' is not",
        ),
        ("data/futures/um/daily/klines/XYZABC/1m/XYZABC-1m-2024-01-01.zip", "'XYZABC' is ambiguous"),
        (
            "data/spot/daily/klines/BTCUSDT/1m/ETHUSDT-1m-2024-01-01.zip",
            "not named after its folder's symbol",
        ),
        ("binance-futures_book_snapshot_25_2024-01-01_BTCUSDT.csv.gz", "Tardis data type"),
        ("coinbase_trades_2024-01-01_BTC-USD.csv.gz", "Tardis exchange 'coinbase' is not mapped"),
    ],
)
def test_known_layouts_that_cannot_be_mapped_fail_with_the_reason(path, why):
    with pytest.raises(LandingFileError, match=why):
        identify(path)


# --------------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------------


def parse(root, relative, **kwargs):
    return parse_file(root / relative, relative_to=root, **kwargs)


def test_freqtrade_trades_feather_and_json(tmp_path):
    trades = freqtrade_trades()
    write(tmp_path, "binance/XRP_ETH-trades.feather", feather_bytes(trades))
    rows = trades[["timestamp", "id", "type", "side", "price", "amount", "cost"]].to_numpy().tolist()
    write(tmp_path, "binance/XRP_ETH-trades.json", pd.Series([rows]).to_json(orient="values")[1:-1].encode())
    for name in ("XRP_ETH-trades.feather", "XRP_ETH-trades.json"):
        parsed = parse(tmp_path, f"binance/{name}")
        assert (parsed.dataset, parsed.archive, parsed.time_unit) == (
            "market_trades",
            "freqtrade:trades",
            "ms",
        )
        got = parsed.frame
        assert list(got["trade_id"]) == list(trades["id"]) and (got["symbol"] == "XRP/ETH").all()
        assert list(got["side"]) == list(trades["side"]) and list(got["amount"]) == list(trades["amount"])
        assert list(got["time"]) == list(pd.to_datetime(trades["timestamp"], unit="ms", utc=True))


def test_binance_spot_trades_without_header_in_microseconds(tmp_path):
    """Spot files from 2025 give times in µs: told by magnitude, per file."""
    relative = "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip"
    start = int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)
    write(
        tmp_path,
        relative,
        zipped("BTCUSDT-trades-2025-01-01.csv", binance_trades_csv(start_ms=start, unit="us")),
    )
    parsed = parse(tmp_path, relative)
    assert (parsed.dataset, parsed.time_unit, parsed.description) == (
        "market_trades",
        "us",
        "zip:csv:no-header",
    )
    got = parsed.frame
    assert got["time"].iloc[0] == pd.Timestamp("2025-01-01", tz="UTC") and got["trade_id"].iloc[0] == "500"
    # isBuyerMaker True: the taker sold
    assert list(got["side"]) == ["buy", "sell"] * 3 and list(got["is_buyer_maker"]) == [False, True] * 3
    assert parsed.warnings == ["fields not loaded: is_best_match"]  # no note about candle positions


def test_binance_agg_trades_with_header(tmp_path):
    relative = "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip"
    write(tmp_path, relative, zipped("BTCUSDT-aggTrades-2024-01-01.csv", agg_trades_csv()))
    parsed = parse(tmp_path, relative)
    got = parsed.frame
    assert (parsed.time_unit, got["symbol"].iloc[0], got["trade_id"].iloc[0]) == (
        "ms",
        "BTC/USDT:USDT",
        "9000",
    )
    assert list(got["cost"]) == list(got["price"] * 0.5)  # no cost column: price x amount
    assert "fields not loaded: first_trade_id, last_trade_id" in parsed.warnings


def test_binance_12_column_klines_in_microseconds(tmp_path):
    relative = "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip"
    frame = candles(start=pd.Timestamp("2025-01-01", tz="UTC"))
    write(tmp_path, relative, zipped("BTCUSDT-1m-2025-01.csv", kline_csv(frame, header=False, unit="us")))
    parsed = parse(tmp_path, relative)
    assert (parsed.dataset, parsed.time_unit, parsed.archive) == ("ohlcv", "us", "binance-vision:klines")
    assert list(parsed.frame["time"]) == list(frame["date"]) and parsed.frame["interval"].iloc[0] == "1m"


def test_mark_candles_carry_their_price_kind(tmp_path):
    relative = "data/futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    write(tmp_path, relative, zipped("BTCUSDT-1m-2024-01-01.csv", kline_csv(candles(), header=True)))
    parsed = parse(tmp_path, relative)
    assert (parsed.price, set(parsed.frame["price"]), parsed.symbol) == ("mark", {"mark"}, "BTC/USDT:USDT")


def test_funding_rates_from_binance_freqtrade_and_tardis(tmp_path):
    write(
        tmp_path,
        "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
        zipped("BTCUSDT-fundingRate-2024-01.csv", funding_csv([0.0001, -0.0002, 0.0003], hours=4)),
    )
    binance = parse(tmp_path, "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip")
    assert list(binance.frame["rate"]) == [0.0001, -0.0002, 0.0003]
    assert set(binance.frame["interval"]) == {"4h"}  # the observed interval, not an assumed 8h
    write(
        tmp_path,
        "binance/futures/BTC_USDT_USDT-8h-funding_rate.feather",
        feather_bytes(freqtrade_funding([1e-4, 2e-4])),
    )
    freqtrade = parse(tmp_path, "binance/futures/BTC_USDT_USDT-8h-funding_rate.feather")
    assert list(freqtrade.frame["rate"]) == [1e-4, 2e-4] and set(freqtrade.frame["interval"]) == {"8h"}
    assert list(freqtrade.frame["time"]) == [T0, T0 + pd.Timedelta(hours=8)]
    write(tmp_path, "binance-futures_derivative_ticker_2024-01-01_BTCUSDT.csv.gz",
          tardis_ticker_csv_gz("binance-futures", "BTCUSDT"))  # fmt: skip
    tardis = parse(tmp_path, "binance-futures_derivative_ticker_2024-01-01_BTCUSDT.csv.gz")
    # the last update before each funding time is the rate paid then, with its mark and index price
    got = tardis.frame
    assert list(got["time"]) == [T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(hours=16)]
    assert list(got["rate"]) == [0.00012, 0.00025] and list(got["mark_price"]) == [42_002.0, 42_002.0]
    assert list(got["index_price"]) == [41_991.0, 41_991.0] and (got["symbol"] == "BTC/USDT:USDT").all()


def test_tardis_trades_and_a_grouped_file(tmp_path):
    write(
        tmp_path,
        "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz",
        tardis_trades_csv_gz("binance-futures", "BTCUSDT"),
    )
    parsed = parse(tmp_path, "binance-futures_trades_2024-01-01_BTCUSDT.csv.gz")
    got = parsed.frame
    assert (parsed.time_unit, list(got["side"]), got["trade_id"].iloc[0]) == (
        "us",
        ["sell", "buy"] * 2,
        "77000",
    )
    assert got["time"].iloc[1] == T0 + pd.Timedelta(milliseconds=1)
    grouped = tardis_trades_csv_gz("binance-futures", "ETHUSDT").decode("latin1")  # rows naming ETHUSDT
    write(tmp_path, "binance-futures_trades_2024-01-01_PERPETUALS.csv.gz", grouped.encode("latin1"))
    assert set(parse(tmp_path, "binance-futures_trades_2024-01-01_PERPETUALS.csv.gz").frame["symbol"]) == {
        "ETH/USDT:USDT"
    }


def test_an_unreadable_trade_is_rejected_alone(tmp_path):
    lines = binance_trades_csv().decode().splitlines()
    lines[2] = lines[2].replace("42002.0", "n/a", 1)
    relative = "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip"
    write(tmp_path, relative, zipped("BTCUSDT-trades-2024-01-01.csv", ("\n".join(lines) + "\n").encode()))
    parsed = parse(tmp_path, relative)
    assert len(parsed.frame) == 5 and list(parsed.rejected_rule) == ["non_numeric"]
    assert list(parsed.rejected_message) == [
        "BTCUSDT-trades-2024-01-01.csv: row 3: price='n/a' is not a finite number"
    ]


def test_a_file_bigger_than_the_batch_comes_in_batches_with_one_time_unit(tmp_path):
    relative = "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip"
    start = int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)
    write(tmp_path, relative, zipped("x.csv", binance_trades_csv(25, start_ms=start, unit="us")))
    batches = list(read_file(tmp_path / relative, relative_to=tmp_path, batch_rows=10))
    assert [len(b.frame) for b in batches] == [10, 10, 5] and {b.time_unit for b in batches} == {"us"}
    assert [b.frame["trade_id"].iloc[0] for b in batches] == ["500", "510", "520"]


def test_checksum_sidecar(tmp_path):
    data = zipped("BTCUSDT-1m-2024-01-01.csv", kline_csv(candles(), header=False))
    good = with_checksum(tmp_path, "a/BTCUSDT-1m-2024-01-01.zip", data)
    assert checksum_problem(good, hashlib.sha256(data).hexdigest()) is None
    bad = with_checksum(tmp_path, "b/BTCUSDT-1m-2024-01-01.zip", data, digest="ab" * 32)
    problem = checksum_problem(bad, hashlib.sha256(data).hexdigest())
    assert problem.startswith("checksum mismatch: BTCUSDT-1m-2024-01-01.zip.CHECKSUM says sha256 abab")
    assert checksum_problem(write(tmp_path, "c/x.zip", data), "00") is None  # no sidecar: nothing to check


def test_headerless_funding_file_needs_a_header(tmp_path):
    relative = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"
    body = b"".join(funding_csv([0.0001] * 8).splitlines(keepends=True)[1:])
    write(tmp_path, relative, zipped("f.csv", body))
    with pytest.raises(LandingFileError):
        parse(tmp_path, relative)


def test_times_of_the_trades_follow_the_file(tmp_path):
    write(tmp_path, "binance/BTC_USDT-trades.feather", feather_bytes(freqtrade_trades(start_ms=T0_MS + 5)))
    assert parse(tmp_path, "binance/BTC_USDT-trades.feather").frame["time"].iloc[0] == T0 + pd.Timedelta(
        milliseconds=5
    )


# --------------------------------------------------------------------------------------------------------
# JSON in bounded batches
# --------------------------------------------------------------------------------------------------------


def _kline_rows(n: int) -> list[list]:
    frame = candles(n)
    times = (frame["date"].astype("int64") // 10**6).tolist()
    return [
        [t, o, o + 2, o - 1, o + 1, v] for t, o, v in zip(times, frame["open"], frame["volume"], strict=True)
    ]


def test_ndjson_is_read_line_batch_by_line_batch(tmp_path):
    lines = [orjson.dumps(row) for row in _kline_rows(25)]
    lines[12] = b"[1704067920000, 112.0, oops]"  # line 13 is not JSON: rejected alone
    write(tmp_path, "binance/BTC_USDT-1m.json", b"\n".join(lines) + b"\n")  # NDJSON by content
    batches = list(read_file(tmp_path / "binance/BTC_USDT-1m.json", relative_to=tmp_path, batch_rows=10))
    assert [b.rows for b in batches] == [10, 10, 5]
    assert [list(b.rejected_rule) for b in batches] == [[], ["invalid_json"], []]
    assert batches[1].rejected_message.iloc[0].startswith("line 13: invalid JSON")
    assert sum(len(b.frame) for b in batches) == 24 and batches[0].layout == "ndjson-arrays"


@pytest.mark.parametrize("header", [False, True])
def test_a_large_flat_array_is_streamed_block_by_block(tmp_path, monkeypatch, header):
    monkeypatch.setattr(json_stream, "STREAM_BYTES", 0)  # every array counts as large
    monkeypatch.setattr(json_stream, "BLOCK_BYTES", 256)  # many blocks, cut between rows
    rows = _kline_rows(40)
    body = ([["timestamp", "open", "high", "low", "close", "volume"]] if header else []) + rows
    write(tmp_path, "binance/BTC_USDT-1m.json", orjson.dumps(body, option=orjson.OPT_INDENT_2))
    batches = list(read_file(tmp_path / "binance/BTC_USDT-1m.json", relative_to=tmp_path, batch_rows=7))
    assert max(b.rows for b in batches) <= 7 and sum(b.rows for b in batches) == 40
    got = pd.concat([b.frame for b in batches])
    assert list(got["time"]) == list(candles(40)["date"]) and list(got["close"]) == [r[4] for r in rows]
    first_row = 2 if header else 1
    assert list(got.index) == list(range(first_row, first_row + 40))  # rows numbered across blocks


def test_arrays_that_cannot_be_streamed(tmp_path, monkeypatch):
    monkeypatch.setattr(json_stream, "STREAM_BYTES", 0)
    monkeypatch.setattr(json_stream, "BLOCK_BYTES", 64)
    nested = [{"time": r[0], "open": r[1], "high": r[2], "low": r[3], "close": r[4], "volume": r[5], "x": [1]}
              for r in _kline_rows(5)]  # fmt: skip
    write(tmp_path, "binance/BTC_USDT-1m.json", orjson.dumps(nested))
    whole = parse(tmp_path, "binance/BTC_USDT-1m.json")  # not flat: read as one document, same rows
    assert len(whole.frame) == 5 and whole.layout == "records"
    write(tmp_path, "binance/ETH_USDT-1m.json", orjson.dumps(_kline_rows(30))[:-30])
    with pytest.raises(LandingFileError, match="invalid JSON in the array's rows|the file is cut short"):
        parse(tmp_path, "binance/ETH_USDT-1m.json")
