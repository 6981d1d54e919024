"""Parsing landed JSON files: every layout, compression, time unit and naming convention, no database."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_warehouse.resources.files import LandingFileError
from market_warehouse.resources.files.layouts import CANONICAL, parse_file
from market_warehouse.resources.files.naming import canonical_interval, names_from_path, normalize_symbol
from market_warehouse.resources.files.timestamps import epoch_unit, parse_times

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
T0_MS = int(T0.timestamp() * 1000)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def candles(n: int = 4, step_ms: int = MINUTE_MS) -> list[dict]:
    """n valid candles from T0, prices rising by one per candle."""
    return [
        {
            "time": T0_MS + i * step_ms,
            "open": 100.0 + i,
            "high": 102.0 + i,
            "low": 99.0 + i,
            "close": 101.0 + i,
            "volume": 10.0 + i,
        }
        for i in range(n)
    ]


def write(root: Path, relative: str, content, *, gz: bool = False) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (
        content
        if isinstance(content, bytes)
        else (content if isinstance(content, str) else json.dumps(content))
    )
    data = data.encode() if isinstance(data, str) else data
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def parse(root: Path, relative: str, **kwargs):
    return parse_file(root / relative, relative_to=root, **kwargs)


def assert_candles(parsed, n: int = 4, *, interval: str = "1m", symbol: str = "BTC/USDT", step=None):
    frame = parsed.frame
    assert list(frame.columns) == list(CANONICAL)
    assert len(frame) == n and parsed.rejected.empty
    assert (frame["exchange"] == "binance").all() and (frame["symbol"] == symbol).all()
    assert (frame["interval"] == interval).all()
    assert str(frame["time"].dt.tz) == "UTC"
    step = step or pd.Timedelta(interval.replace("m", "min"))
    assert list(frame["time"]) == [T0 + i * step for i in range(n)]
    assert list(frame["open"]) == [100.0 + i for i in range(n)]
    assert list(frame["volume"]) == [10.0 + i for i in range(n)]


# --------------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------------


def test_array_of_arrays_in_ccxt_order(tmp_path):
    rows = [[c["time"], c["open"], c["high"], c["low"], c["close"], c["volume"]] for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == "array-of-arrays" and parsed.time_unit == "ms"
    assert_candles(parsed)
    assert parsed.warnings == []


def test_binance_12_field_klines_read_quote_volume_and_trades(tmp_path):
    rows = [
        [
            c["time"], f"{c['open']:.8f}", f"{c['high']:.8f}", f"{c['low']:.8f}", f"{c['close']:.8f}",
            f"{c['volume']:.8f}", c["time"] + MINUTE_MS - 1, "1234.5", 42 + i, "5.0", "500.0", "0",
        ]
        for i, c in enumerate(candles())
    ]  # fmt: skip
    write(tmp_path, "binance/BTCUSDT-1m-2024-01.json", rows)
    parsed = parse(tmp_path, "binance/BTCUSDT-1m-2024-01.json")
    assert parsed.layout == "binance-klines"
    assert_candles(parsed)
    assert list(parsed.frame["quote_volume"]) == [1234.5] * 4
    assert list(parsed.frame["trades_count"]) == [42, 43, 44, 45]
    assert parsed.frame["vwap"].isna().all()


def test_twelve_fields_that_are_not_binance_are_read_as_ccxt_order_with_a_warning(tmp_path):
    rows = [
        [c["time"], c["open"], c["high"], c["low"], c["close"], c["volume"], *[0.5] * 6] for c in candles()
    ]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == "array-of-arrays"
    assert_candles(parsed)
    assert parsed.frame["trades_count"].isna().all()
    assert any("6 trailing field(s) ignored" in w for w in parsed.warnings)


def test_array_of_arrays_with_a_header_row(tmp_path):
    rows = [["timestamp", "open", "high", "low", "close", "volume"]]
    rows += [[c["time"], c["open"], c["high"], c["low"], c["close"], c["volume"]] for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == "array-of-arrays+header"
    assert_candles(parsed)


@pytest.mark.parametrize(
    ("names", "extra"),
    [
        ({"time": "timestamp", "open": "open"}, {}),
        (
            {"time": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"},
            {"n": 7, "vw": 100.5},
        ),
        ({"time": "open_time", "volume": "Volume"}, {"close_time": 1, "ignore": "0"}),
        ({"time": "date", "open": "Open", "high": "High", "low": "Low", "close": "Close"}, {}),
    ],
)
def test_records_with_common_field_names(tmp_path, names, extra):
    rows = [{names.get(k, k): v for k, v in c.items()} | extra for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == "records"
    assert_candles(parsed)
    if "n" in extra:
        assert list(parsed.frame["trades_count"]) == [7] * 4 and list(parsed.frame["vwap"]) == [100.5] * 4
    if "ignore" in extra:
        assert any("close_time" in w and "ignore" in w for w in parsed.warnings)


def test_one_letter_names_are_case_sensitive(tmp_path):
    """Binance's stream format: 't' open time / 'T' close time, 'v' volume / 'V' taker-buy volume."""
    rows = [
        {"t": c["time"], "T": c["time"] + MINUTE_MS - 1, "o": c["open"], "h": c["high"], "l": c["low"],
         "c": c["close"], "v": c["volume"], "V": 1.0, "q": 5.0, "Q": 0.5, "s": "BTCUSDT", "i": "1m"}
        for c in candles()
    ]  # fmt: skip
    write(tmp_path, "binance/stream.ndjson", "\n".join(json.dumps(r) for r in rows))
    parsed = parse(tmp_path, "binance/stream.ndjson")
    assert parsed.layout == "ndjson-records"
    assert_candles(parsed)
    assert list(parsed.frame["quote_volume"]) == [5.0] * 4


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {k: [c[k] for c in candles()] for k in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex([T0 + pd.Timedelta(minutes=i) for i in range(4)], name="time"),
    )


@pytest.mark.parametrize(
    ("orient", "date_format"),
    [(o, f) for o in ("split", "columns", "index") for f in ("epoch", "iso")] + [("table", "iso")],
)
@pytest.mark.filterwarnings("ignore:'epoch' date format is deprecated")  # older pandas' default: still landed
def test_pandas_to_json_orients_with_the_time_in_the_index(tmp_path, orient, date_format):
    write(tmp_path, "binance/BTC_USDT-1m.json", _frame().to_json(orient=orient, date_format=date_format))
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == orient
    assert parsed.time_unit == ("ms" if date_format == "epoch" else "iso")
    assert_candles(parsed)


@pytest.mark.parametrize("orient", ["records", "split", "columns", "index", "values"])
def test_pandas_to_json_orients_with_the_time_as_a_column(tmp_path, orient):
    frame = _frame().reset_index()
    if orient == "values":  # no names at all: ccxt order is the only reading
        frame = frame[["time", "open", "high", "low", "close", "volume"]]
    write(tmp_path, "binance/BTC_USDT-1m.json", frame.to_json(orient=orient, date_format="iso"))
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.layout == {"values": "array-of-arrays"}.get(orient, orient)
    assert parsed.time_unit == "iso"
    assert_candles(parsed)


def test_columns_orient_without_times_is_refused(tmp_path):
    write(tmp_path, "binance/BTC_USDT-1m.json", _frame().reset_index(drop=True).to_json(orient="columns"))
    with pytest.raises(LandingFileError, match="without times"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")


def test_data_wrapper_gives_symbol_exchange_and_interval(tmp_path):
    body = {"exchange": "binance", "symbol": "BTCUSDT", "interval": "1m", "data": candles()}
    write(tmp_path, "dumps/export.json", body)
    parsed = parse(tmp_path, "dumps/export.json")
    assert parsed.layout == "records" and parsed.wrapper == ("data",)
    assert parsed.description == "data:records"
    assert_candles(parsed)


def test_result_wrapper_bybit_style_newest_first(tmp_path):
    rows = [[str(c["time"]), str(c["open"]), str(c["high"]), str(c["low"]), str(c["close"]), str(c["volume"]), "1"]
            for c in candles()][::-1]  # fmt: skip
    write(tmp_path, "bybit/kline.json", {"retCode": 0, "result": {"symbol": "BTCUSDT", "list": rows}})
    parsed = parse(tmp_path, "bybit/kline.json")
    assert parsed.wrapper == ("result", "list") and parsed.layout == "array-of-arrays"
    assert parsed.exchange == "bybit" and parsed.symbol == "BTC/USDT"
    assert parsed.interval == "1m"
    assert any("inferred from the median spacing" in w for w in parsed.warnings)
    assert list(parsed.frame["time"]) == [T0 + pd.Timedelta(minutes=i) for i in range(4)]


def test_result_wrapper_kraken_pair_key_reads_vwap_at_position_5(tmp_path):
    rows = [[c["time"] // 1000, str(c["open"]), str(c["high"]), str(c["low"]), str(c["close"]), "100.7",
             str(c["volume"]), 9] for c in candles(step_ms=HOUR_MS)]  # fmt: skip
    write(tmp_path, "kraken/XBT_EUR-1h.json", {"error": [], "result": {"XXBTZEUR": rows, "last": 1}})
    parsed = parse(tmp_path, "kraken/XBT_EUR-1h.json")
    assert parsed.layout == "kraken-ohlc" and parsed.wrapper == ("result", "XXBTZEUR")
    assert parsed.time_unit == "s" and parsed.symbol == "XBT/EUR" and parsed.interval == "1h"
    assert list(parsed.frame["vwap"]) == [100.7] * 4
    assert list(parsed.frame["volume"]) == [10.0, 11.0, 12.0, 13.0]
    assert list(parsed.frame["trades_count"]) == [9] * 4


def test_api_error_response_is_refused_with_its_message(tmp_path):
    write(tmp_path, "binance/BTC_USDT-1m.json", {"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(LandingFileError, match="Invalid symbol"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")


def test_ndjson_arrays_and_a_broken_line_rejected_alone(tmp_path):
    lines = [
        json.dumps([c["time"], c["open"], c["high"], c["low"], c["close"], c["volume"]]) for c in candles()
    ]
    lines.insert(2, '[1704067260000, 101.0, "truncat')
    write(tmp_path, "binance/BTC_USDT-1m.jsonl", "\n".join(lines) + "\n")
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.jsonl")
    assert parsed.layout == "ndjson-arrays"
    assert len(parsed.frame) == 4 and parsed.rows == 5
    assert list(parsed.rejected.index) == [3]
    assert parsed.rejected_rule.tolist() == ["invalid_json"]
    message = parsed.rejected_message.iloc[0]
    assert message.startswith("line 3: invalid JSON") and '"truncat' in message
    assert parsed.rejected.iloc[0]["symbol"] == "BTC/USDT"


@pytest.mark.parametrize("name", ["binance/BTC_USDT-1m.json.gz", "binance/BTC_USDT-1m.json"])
def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path, name):
    write(tmp_path, name, candles(), gz=True)
    parsed = parse(tmp_path, name)
    assert parsed.compressed and parsed.description == "gzip:records"
    assert_candles(parsed)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    write(tmp_path, "binance/BTC_USDT-1m.json.gz", gzip.compress(json.dumps(candles()).encode())[:40])
    with pytest.raises(LandingFileError, match="corrupt gzip"):
        parse(tmp_path, "binance/BTC_USDT-1m.json.gz")


@pytest.mark.parametrize(
    "content", [b"", b"  \n", b"[]", b"{}", b'{"data": []}', b'{"result": {"list": []}}']
)
def test_empty_files_are_empty_not_errors(tmp_path, content):
    write(tmp_path, "binance/BTC_USDT-1m.json", content)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.empty and parsed.rows == 0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"[[1704067200000, 1, 2, 0.5, 1, 3], [1704067260000, 1, 2", "invalid JSON at line 1 column"),
        (b"PK\x03\x04rest-of-a-zip", "zip archive"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'"just a string"', "single str"),
        (b"[1, 2, 3]", "int values"),
        (b"[[1704067200000, 1, 2, 0.5]]", "at least 6 expected"),
        (b'[{"time": 1704067200000, "open": 1, "high": 2, "low": 0.5, "close": 1}]', "no volume field"),
    ],
)
def test_unreadable_files_fail_with_a_reason(tmp_path, content, match):
    write(tmp_path, "binance/BTC_USDT-1m.json", content)
    with pytest.raises(LandingFileError, match=match):
        parse(tmp_path, "binance/BTC_USDT-1m.json")


# --------------------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_units_are_detected_per_file_and_reported(tmp_path, unit, scale):
    rows = [dict(c, time=(c["time"] // 1000) * scale) for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.time_unit == unit
    assert_candles(parsed)


@pytest.mark.parametrize(
    "stamps",
    [
        ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z", "2024-01-01T00:03:00Z"],
        ["2024-01-01T01:00:00+01:00", "2024-01-01 00:01:00+00:00", "2024-01-01T00:02:00.000Z",
         "2023-12-31T19:03:00-05:00"],
        ["2024-01-01T00:00:00 UTC", "2024-01-01T00:01:00 UTC", "2024-01-01T00:02:00 GMT", "2024-01-01T00:03Z"],
    ],
)  # fmt: skip
def test_iso_times_with_zones_become_utc(tmp_path, stamps):
    rows = [dict(c, time=s) for c, s in zip(candles(), stamps, strict=True)]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.time_unit == "iso"
    assert_candles(parsed)


def test_numeric_strings_are_epochs(tmp_path):
    rows = [dict(c, time=str(c["time"])) for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.time_unit == "ms"
    assert_candles(parsed)


def test_naive_iso_times_are_refused_unless_a_zone_is_declared(tmp_path):
    rows = [dict(c, time=f"2024-01-01T0{i // 60}:{i % 60:02d}:00") for i, c in enumerate(candles())]
    # Europe/Berlin is UTC+1 in January: local 01:00 is 00:00 UTC.
    local = [dict(c, time=f"2024-01-01T01:{i:02d}:00") for i, c in enumerate(candles())]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    with pytest.raises(LandingFileError, match="without a zone"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert_candles(parse(tmp_path, "binance/BTC_USDT-1m.json", default_timezone="UTC"))
    write(tmp_path, "binance/BTC_USDT-1m.json", {"timezone": "Europe/Berlin", "data": local})
    assert_candles(parse(tmp_path, "binance/BTC_USDT-1m.json"))
    write(tmp_path, "binance/BTC_USDT-1m.json", {"timezone": "Mars/Olympus", "data": local})
    with pytest.raises(LandingFileError, match="unknown time zone 'Mars/Olympus'"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")


def test_a_time_in_another_unit_than_the_file_is_rejected_not_misread(tmp_path):
    rows = candles(5)
    rows[3]["time"] = rows[3]["time"] // 1000  # seconds among milliseconds: would be January 1970
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert parsed.time_unit == "ms" and len(parsed.frame) == 4
    assert parsed.rejected_rule.tolist() == ["timestamp_unit"]
    assert parsed.rejected_message.iloc[0] == (
        "row 4: time=1704067380 looks like epoch s, but this file's timestamps are epoch ms"
    )
    assert parsed.rejected.loc[4, "time"] == 1704067380  # the raw value is kept for quarantine


def test_unreadable_values_become_rejected_rows_with_row_and_field(tmp_path):
    rows = candles(6)
    rows[1]["open"] = "n/a"
    rows[2]["volume"] = None
    rows[3]["time"] = "yesterday"
    rows[4]["trades"] = 3.5
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.json")
    assert list(parsed.frame.index) == [1, 6]
    assert dict(parsed.rejected_rule) == {
        2: "non_numeric", 3: "missing_value", 4: "unparseable_time", 5: "non_integer"
    }  # fmt: skip
    messages = dict(parsed.rejected_message)
    assert messages[2] == "row 2: open='n/a' is not a finite number"
    assert messages[3] == "row 3: volume is missing"
    assert messages[4] == "row 4: time='yesterday' is not an epoch number like the rest of the file"
    assert messages[5] == "row 5: trades_count=3.5 is not a whole number"
    # A readable time is given as UTC in the rejected row, the unreadable value as it was.
    assert parsed.rejected.loc[2, "time"] == T0 + pd.Timedelta(minutes=1)
    assert parsed.rejected.loc[2, "open"] == "n/a"
    assert (parsed.rejected["interval"] == "1m").all()  # spacing measured on every readable time


def test_a_file_where_no_row_can_be_read_fails(tmp_path):
    rows = [dict(c, open="x") for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    with pytest.raises(LandingFileError, match="none of the 4 rows could be read; first: row 1: open='x'"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")


def test_parse_times_directly():
    parsed = parse_times(pd.Series([1.5e9, np.nan, 1.5e9 + 60]), field_name="ts")
    assert parsed.unit == "s" and parsed.times.isna().tolist() == [False, True, False]
    assert epoch_unit(1.7e9) == "s" and epoch_unit(1.7e12) == "ms"
    assert epoch_unit(1.7e15) == "us" and epoch_unit(1.7e18) == "ns"
    out_of_range = parse_times(pd.Series(["2024-01-01T00:00:00Z", "2300-01-01T00:00:00Z"]), field_name="t")
    assert out_of_range.rejected[1][0] == "timestamp_out_of_range"


# --------------------------------------------------------------------------------------------------------
# Names from paths, interval against spacing
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "exchange", "symbol", "interval"),
    [
        ("binance/BTC_USDT-1m.json", "binance", "BTC/USDT", "1m"),
        ("BTCUSDT_1h.json.gz", None, "BTC/USDT", "1h"),
        ("okx/ETH-USDT-4h.ndjson", "okx", "ETH/USDT", "4h"),
        ("kraken_XBT_EUR_60min.json", "kraken", "XBT/EUR", "1h"),
        ("data/spot/monthly/klines/ETHBTC/1d/ETHBTC-1d-2024-01.json", None, "ETH/BTC", "1d"),
        ("exchange=nasdaq/symbol=AAPL/interval=1day/part-0.json", "nasdaq", "AAPL", "1d"),
        ("binance/1INCHUSDT-1M.json", "binance", "1INCH/USDT", "1M"),
        ("binance/BTC_USDT-15m-export.json", "binance", "BTC/USDT", "15m"),
        ("archive/prices.json", None, None, None),
    ],
)
def test_names_from_path(path, exchange, symbol, interval):
    names = names_from_path(path)
    assert (names.exchange, names.symbol, names.interval) == (exchange, symbol, interval)


def test_symbol_and_interval_normalization():
    assert normalize_symbol("btcusdt") == "BTC/USDT"
    assert normalize_symbol("BTC-USDT") == "BTC/USDT"
    assert normalize_symbol("BTC/USDT:USDT") == "BTC/USDT:USDT"
    assert normalize_symbol("AAPL") == "AAPL"
    assert canonical_interval("60m") == "1h" and canonical_interval("24h") == "1d"
    assert canonical_interval("1M") == "1M" and canonical_interval("1month") == "1M"
    assert canonical_interval(900) == "15m"
    with pytest.raises(LandingFileError, match="not understood"):
        canonical_interval("often")


def test_interval_from_path_must_match_the_spacing_of_the_data(tmp_path):
    write(tmp_path, "binance/BTC_USDT-1h.json", candles(6))  # minute candles in a file named 1h
    with pytest.raises(LandingFileError) as err:
        parse(tmp_path, "binance/BTC_USDT-1h.json")
    assert str(err.value) == (
        "binance BTC/USDT: interval '1h' (the path) does not match the data, "
        "whose median spacing between candles is 1m (60 s)"
    )


def test_interval_spacing_tolerates_gaps_and_calendar_months(tmp_path):
    rows = [c for i, c in enumerate(candles(10)) if i not in (3, 7)]  # two missing candles
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    assert parse(tmp_path, "binance/BTC_USDT-1m.json").interval == "1m"
    months = pd.date_range("2024-01-01", periods=5, freq="MS", tz="UTC")
    monthly = [dict(c, time=int(t.timestamp() * 1000)) for c, t in zip(candles(5), months, strict=True)]
    write(tmp_path, "binance/BTC_USDT-1M.json", monthly)
    assert parse(tmp_path, "binance/BTC_USDT-1M.json").interval == "1M"


def test_interval_is_inferred_when_nobody_names_it_and_one_candle_is_refused(tmp_path):
    write(tmp_path, "binance/BTC_USDT.json", candles(3, step_ms=HOUR_MS))
    parsed = parse(tmp_path, "binance/BTC_USDT.json")
    assert parsed.interval == "1h"
    assert (
        "binance BTC/USDT: interval '1h' inferred from the median spacing of the candles" in parsed.warnings
    )
    write(tmp_path, "binance/ETH_USDT.json", candles(1))
    with pytest.raises(LandingFileError, match="one candle and no interval"):
        parse(tmp_path, "binance/ETH_USDT.json")


def test_file_fields_win_but_must_agree_with_the_path(tmp_path):
    rows = [dict(c, symbol="ETHUSDT") for c in candles()]
    write(tmp_path, "binance/BTC_USDT-1m.json", rows)
    with pytest.raises(LandingFileError, match=r"symbol in the file \('ETH/USDT'\) disagrees with the path"):
        parse(tmp_path, "binance/BTC_USDT-1m.json")
    write(tmp_path, "binance/candles-1m.json", rows)
    assert parse(tmp_path, "binance/candles-1m.json").symbol == "ETH/USDT"


def test_missing_exchange_or_symbol_says_how_to_name_the_file(tmp_path):
    write(tmp_path, "BTC_USDT-1m.json", candles())
    with pytest.raises(LandingFileError, match="no exchange for the candles: put the file under a folder"):
        parse(tmp_path, "BTC_USDT-1m.json")
    write(tmp_path, "binance/prices.json", candles())
    with pytest.raises(LandingFileError, match="no symbol for the candles"):
        parse(tmp_path, "binance/prices.json")


def test_several_symbols_in_one_file_are_separate_series(tmp_path):
    rows = [dict(c, symbol=s, exchange="binance") for s in ("BTC/USDT", "ETH/USDT") for c in candles()]
    write(tmp_path, "mixed-1m.json", rows)
    parsed = parse(tmp_path, "mixed-1m.json")
    assert parsed.symbol is None and parsed.exchange == "binance" and parsed.interval == "1m"
    assert parsed.frame.groupby("symbol").size().to_dict() == {"BTC/USDT": 4, "ETH/USDT": 4}
