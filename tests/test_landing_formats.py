"""Landed candle files beyond JSON: CSV (header or not, any delimiter, gzip), Parquet, Feather / Arrow IPC
and zip archives of any of them, read in bounded batches; then loaded through the landing loader into the
real warehouse (counts, ledger skips, a bad file among good ones, a failure in a later batch)."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from market_warehouse.resources.files import LandingFileError, ledger
from market_warehouse.resources.files.landing import landed_files, load_landing_folder
from market_warehouse.resources.files.layouts import CANONICAL, parse_file, read_file

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
MINUTE = pd.Timedelta(minutes=1)
BINANCE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)


def candles(n: int = 20, *, step: pd.Timedelta = MINUTE, start: pd.Timestamp = T0) -> pd.DataFrame:
    """freqtrade's candle frame: `date` datetime64[ns, UTC], then open/high/low/close/volume floats."""
    date = pd.date_range(start, periods=n, freq=step).astype("datetime64[ns, UTC]")
    base = 100.0 + np.arange(n)
    return pd.DataFrame(
        {
            "date": date,
            "open": base,
            "high": base + 2,
            "low": base - 1,
            "close": base + 1,
            "volume": 10.0 + np.arange(n),
        }
    )


def epoch_ms(frame: pd.DataFrame) -> pd.Series:
    return frame["date"].astype("int64") // 10**6


def csv_text(frame: pd.DataFrame, *, header: bool = True, sep: str = ",") -> bytes:
    out = frame.assign(date=epoch_ms(frame)).rename(columns={"date": "timestamp"})
    return out.to_csv(index=False, header=header, sep=sep).encode()


def kline_text(frame: pd.DataFrame, *, header: bool) -> bytes:
    """Binance Vision's 12-column klines: close time = open time + 1 minute - 1 ms, a trade count."""
    rows = [BINANCE_HEADER] if header else []
    for t, o, v in zip(epoch_ms(frame), frame["open"], frame["volume"], strict=True):
        rows.append(f"{t},{o},{o + 2},{o - 1},{o + 1},{v},{t + 59_999},1050.0,7,5.0,500.0,0")
    return ("\n".join(rows) + "\n").encode()


def feather_bytes(frame: pd.DataFrame) -> bytes:
    """As freqtrade's FeatherDataHandler writes it: `to_feather(compression='lz4', compression_level=9)`."""
    sink = io.BytesIO()
    frame.reset_index(drop=True).to_feather(sink, compression="lz4", compression_level=9)
    return sink.getvalue()


def parquet_bytes(frame: pd.DataFrame, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=row_group_size)
    return sink.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return sink.getvalue()


def write(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def parse(root: Path, relative: str, **kwargs):
    return parse_file(root / relative, relative_to=root, **kwargs)


def assert_candles(parsed, frame: pd.DataFrame, *, symbol: str = "BTC/USDT", interval: str = "1m") -> None:
    got = parsed.frame
    assert list(got.columns) == list(CANONICAL) and parsed.rejected.empty
    assert (got["exchange"] == "binance").all() and (got["symbol"] == symbol).all()
    assert (got["interval"] == interval).all()
    assert list(got["time"]) == list(frame["date"])
    for name in ("open", "high", "low", "close", "volume"):
        assert list(got[name]) == list(frame[name]), name


# --------------------------------------------------------------------------------------------------------
# Reading each format
# --------------------------------------------------------------------------------------------------------


def test_a_freqtrade_feather_file(tmp_path):
    frame = candles()
    path = write(tmp_path, "binance/BTC_USDT-1m.feather", feather_bytes(frame))
    schema = feather.read_table(path).schema
    assert str(schema.field("date").type) == "timestamp[ns, tz=UTC]"  # freqtrade's own files' type
    assert schema.names == ["date", "open", "high", "low", "close", "volume"]
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.feather")
    assert (parsed.description, parsed.time_unit) == ("feather", "timestamp")
    assert_candles(parsed, frame)


def test_parquet_with_millisecond_times_and_an_unused_column(tmp_path):
    frame = candles()
    table = pa.Table.from_pandas(frame.assign(date=frame["date"].astype("datetime64[ms, UTC]"), note="x"))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    write(tmp_path, "binance/BTC_USDT-1m.parquet", sink.getvalue())
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.parquet")
    assert parsed.description == "parquet"
    assert_candles(parsed, frame)
    assert "fields not loaded: note" in parsed.warnings


def test_an_arrow_ipc_stream(tmp_path):
    frame = candles()
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=6)
    write(tmp_path, "binance/BTC_USDT-1m.arrows", sink.getvalue())
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.arrows")
    assert parsed.description == "feather:arrow-stream"
    assert_candles(parsed, frame)


@pytest.mark.parametrize(
    ("name", "data", "description"),
    [
        ("BTC_USDT-1m.csv", csv_text(candles()), "csv:header"),
        ("BTC_USDT-1m.csv", csv_text(candles(), header=False, sep=";"), "csv:no-header"),
        ("BTC_USDT-1m.tsv", csv_text(candles(), sep="\t"), "csv:header"),
        ("BTC_USDT-1m.txt", csv_text(candles(), sep="|"), "csv:header"),  # told by content: not JSON
        ("BTC_USDT-1m.csv.gz", gzip.compress(csv_text(candles())), "gzip:csv:header"),
        ("BTC_USDT-1m", gzip.compress(csv_text(candles(), header=False)), "gzip:csv:no-header"),
        ("BTC_USDT-1m.csv", b"\xef\xbb\xbf" + csv_text(candles()), "csv:header"),  # a byte-order mark
    ],
)
def test_csv_header_delimiter_and_compression_are_told_per_file(tmp_path, name, data, description):
    write(tmp_path, f"binance/{name}", data)
    parsed = parse(tmp_path, f"binance/{name}")
    assert (parsed.description, parsed.time_unit) == (description, "ms")
    assert_candles(parsed, candles())


@pytest.mark.parametrize("header", [True, False])
def test_binance_vision_zip_of_12_column_klines_with_or_without_header(tmp_path, header):
    frame = candles()
    name = "binance/BTCUSDT-1m-2024-01.zip"
    write(tmp_path, name, zipped({"BTCUSDT-1m-2024-01.csv": kline_text(frame, header=header)}))
    parsed = parse(tmp_path, name)
    assert parsed.description == ("zip:csv:header" if header else "zip:csv:binance-klines")
    assert_candles(parsed, frame)
    assert list(parsed.frame["quote_volume"]) == [1050.0] * len(frame)
    assert list(parsed.frame["trades_count"]) == [7] * len(frame)


def test_a_zip_of_several_formats_reads_every_member_and_skips_non_data(tmp_path):
    btc, eth = candles(), candles(start=T0 + 60 * MINUTE)
    members = {
        "BTC_USDT-1m.parquet": parquet_bytes(btc),
        "ETH_USDT-1m.feather": feather_bytes(eth),
        "ETH_USDT-1m.feather.CHECKSUM": b"0" * 64 + b"  ETH_USDT-1m.feather\n",
        "__MACOSX/._BTC_USDT-1m.parquet": b"resource fork",
        "notes/": b"",
    }
    write(tmp_path, "binance/export.zip", zipped(members))
    parsed = parse(tmp_path, "binance/export.zip")
    assert parsed.description == "zip:parquet"  # the first member's; the landing report lists both
    by_symbol = {s: g for s, g in parsed.frame.groupby("symbol")}
    assert sorted(by_symbol) == ["BTC/USDT", "ETH/USDT"]
    assert list(by_symbol["ETH/USDT"]["time"]) == list(eth["date"])
    assert list(by_symbol["BTC/USDT"]["close"]) == list(btc["close"])


def test_unreadable_csv_values_and_rows_are_rejected_one_by_one(tmp_path):
    lines = csv_text(candles(6)).decode().splitlines()
    lines[3] = lines[3].replace(",102.0,", ",n/a,", 1)  # row 4 (the header is row 1): open not a number
    lines[5] = ",".join(lines[5].split(",")[:5])  # row 6: a field missing
    write(tmp_path, "binance/BTC_USDT-1m.csv", ("\n".join(lines) + "\n").encode())
    parsed = parse(tmp_path, "binance/BTC_USDT-1m.csv")
    assert list(parsed.frame.index) == [2, 3, 5, 7]
    assert dict(parsed.rejected_rule) == {4: "non_numeric", 6: "row_shape"}
    messages = dict(parsed.rejected_message)
    assert messages[4] == "row 4: open='n/a' is not a finite number"
    assert messages[6].startswith("row 6 has 5 fields, the header's 6: 1704067440000,")
    assert parsed.rejected.loc[4, "open"] == "n/a" and parsed.rejected.loc[6, "symbol"] == "BTC/USDT"


def test_a_row_message_names_the_zip_member(tmp_path):
    text = kline_text(candles(4), header=False).decode().replace(",101.0,103.0,", ",oops,103.0,", 1)
    write(tmp_path, "binance/BTCUSDT-1m-2024-01.zip", zipped({"BTCUSDT-1m-2024-01.csv": text.encode()}))
    parsed = parse(tmp_path, "binance/BTCUSDT-1m-2024-01.zip")
    assert parsed.rejected_message.tolist() == [
        "BTCUSDT-1m-2024-01.csv: row 2: open='oops' is not a finite number"
    ]


# --------------------------------------------------------------------------------------------------------
# Bounded batches
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "first_row"),
    [
        ("BTC_USDT-1m.csv", csv_text(candles(30)), 2),  # the header is row 1
        ("BTC_USDT-1m.parquet", parquet_bytes(candles(30), row_group_size=4), 1),
        ("BTC_USDT-1m.feather", feather_bytes(candles(30)), 1),
        ("BTC_USDT-1m.zip", zipped({"BTC_USDT-1m.csv": kline_text(candles(30), header=False)}), 1),
    ],
)
def test_a_file_bigger_than_the_batch_is_read_in_bounded_batches(tmp_path, name, data, first_row):
    path = write(tmp_path, f"binance/{name}", data)
    batches = list(read_file(path, relative_to=tmp_path, batch_rows=7))
    assert [len(b.frame) for b in batches] == [7, 7, 7, 7, 2]
    labels = [label for b in batches for label in b.frame.index]
    assert labels == list(range(first_row, first_row + 30))
    whole = parse_file(path, relative_to=tmp_path)
    assert_candles(whole, candles(30))
    pd.testing.assert_frame_equal(pd.concat([b.frame for b in batches]), whole.frame)


def test_later_batches_keep_the_time_unit_of_the_first(tmp_path):
    """Rows 11-15 in seconds inside a millisecond file: rejected as such, not read as a new unit."""
    frame = candles(20)
    text = csv_text(frame, header=False).decode().splitlines()
    for i in range(10, 15):
        stamp, rest = text[i].split(",", 1)
        text[i] = f"{int(stamp) // 1000},{rest}"
    path = write(tmp_path, "binance/BTC_USDT-1m.csv", ("\n".join(text) + "\n").encode())
    batches = list(read_file(path, relative_to=tmp_path, batch_rows=5))
    assert [b.time_unit for b in batches] == ["ms", "ms", "ms", "ms"]
    assert batches[2].frame.empty and set(batches[2].rejected_rule) == {"timestamp_unit"}
    assert sum(len(b.frame) for b in batches) == 15


def test_a_later_batch_that_contradicts_the_interval_fails_the_file(tmp_path):
    frame = pd.concat([candles(10), candles(10, step=pd.Timedelta(hours=1), start=T0 + pd.Timedelta(days=1))])
    path = write(tmp_path, "binance/BTC_USDT.csv", csv_text(frame))
    batches = read_file(path, relative_to=tmp_path, batch_rows=5)
    assert [b.interval for b in (next(batches), next(batches))] == ["1m", "1m"]
    with pytest.raises(
        LandingFileError, match=r"interval '1m' \(found in the file's first rows\) does not match"
    ):
        next(batches)


# --------------------------------------------------------------------------------------------------------
# What is refused, and why
# --------------------------------------------------------------------------------------------------------


def test_naive_parquet_timestamps_need_a_declared_zone(tmp_path):
    frame = candles()
    naive = frame.assign(date=frame["date"].dt.tz_localize(None))
    write(tmp_path, "binance/BTC_USDT-1m.parquet", parquet_bytes(naive))
    with pytest.raises(LandingFileError, match="'date' holds timestamps without a zone"):
        parse(tmp_path, "binance/BTC_USDT-1m.parquet")
    assert_candles(parse(tmp_path, "binance/BTC_USDT-1m.parquet", default_timezone="UTC"), frame)


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("exports/futures/XRP-USDT-1h.feather", "the folder 'futures/'"),
        ("exports/XRP-USDT-8h-mark.feather", "freqtrade candle type 'mark'"),
    ],
)
def test_futures_files_of_no_known_layout_are_refused_not_stored_as_spot(tmp_path, relative, why):
    """Known layouts (freqtrade, Binance Vision) map futures to their instrument: tests/test_archives_*.py."""
    write(tmp_path, relative, feather_bytes(candles()))
    with pytest.raises(LandingFileError) as err:
        parse(tmp_path, relative)
    assert str(err.value).startswith(
        f"{relative}: futures data ({why}) whose instrument cannot be told from the path"
    )


def _trades_feather() -> bytes:
    """freqtrade's trades file: timestamp, id, type, side, price, amount, cost."""
    trades = pd.DataFrame(
        {"timestamp": [1_570_752_011_620] * 2, "id": ["1", "2"], "type": [None, None], "side": ["sell", "buy"],
         "price": [0.0014, 0.0015], "amount": [23.0, 54.0], "cost": [0.03, 0.08]}
    )  # fmt: skip
    return feather_bytes(trades)


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        (
            "BTC_USDT-5m.h5",
            b"\x89HDF\r\n\x1a\n" + b"\0" * 100,
            "an HDF5 file; convert it to Feather or Parquet",
        ),
        (
            "BTC_USDT-1m.json",
            b"BZh91AY&SY" + b"\0" * 40,
            "the content is a bzip2 file; decompress or convert",
        ),
        ("BTC_USDT-1m.parquet", parquet_bytes(candles())[:-40], "cannot read the Parquet data"),
        ("BTC_USDT-1m.feather", feather_bytes(candles())[:-40], "cannot read the Feather/Arrow data"),
        ("BTC_USDT-1m.zip", b"PK\x03\x04" + b"\0" * 40, "corrupt zip archive"),
        (
            "BTC_USDT-1m.zip",
            zipped({"inner.zip": zipped({"a.csv": b"x"})}),
            "inner.zip is itself a zip archive",
        ),
        ("XRP_ETH-1m.feather", _trades_feather(), "rows are trades, not candles"),  # told by the columns
        ("BTC_USDT-1m.json", csv_text(candles()), "the content looks like CSV: name the file .csv"),
        (
            "BTC_USDT-1m.csv",
            b"time,open\n1,2\n3,4\n",
            r"no high, low, close, volume field\(s\) in the header rows",
        ),
        ("BTC_USDT-1m.csv", b"1,2\n3,4\n", "rows have 2 fields: at least 6 expected"),
        (
            "BTC_USDT-1m.csv",
            b"time,open,high,low,close,volume\n1,2\n3,4\n",
            "no row has the 6 fields of the first",
        ),
    ],
)
def test_unreadable_files_say_what_they_are(tmp_path, name, data, match):
    write(tmp_path, f"binance/{name}", data)
    with pytest.raises(LandingFileError, match=match):
        parse(tmp_path, f"binance/{name}")


@pytest.mark.parametrize(
    ("name", "data", "description"),
    [
        ("BTC_USDT-1m.csv", b"", "csv:empty"),
        ("BTC_USDT-1m.csv", csv_text(candles(0)), "csv:empty"),  # a header alone
        ("BTC_USDT-1m.parquet", parquet_bytes(candles(0)), "parquet:empty"),
        ("BTC_USDT-1m.zip", zipped({"README.md.CHECKSUM": b"0"}), "zip:empty"),
    ],
)
def test_files_without_rows_are_empty(tmp_path, name, data, description):
    write(tmp_path, f"binance/{name}", data)
    parsed = parse(tmp_path, f"binance/{name}")
    assert parsed.empty and parsed.description == description


def test_landed_files_takes_every_format_and_leaves_checksums(tmp_path):
    for name in ("a.csv", "b.parquet", "c.feather", "d.zip", "d.zip.CHECKSUM", "e.json.gz", "f.arrow"):
        write(tmp_path, f"binance/{name}", b"x")
    assert [p.name for p in landed_files(tmp_path)] == [
        "a.csv", "b.parquet", "c.feather", "d.zip", "e.json.gz", "f.arrow"
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Through the landing loader, into the warehouse
# --------------------------------------------------------------------------------------------------------


def scalar(engine: sa.Engine, query: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(query)).scalar()


def _format_folder(root: Path) -> None:
    """20 candles per good file, each its own symbol; bad and refused files beside them."""
    write(root, "binance/AAA_USDT-1m.feather", feather_bytes(candles()))
    write(root, "binance/BBB_USDT-1m.parquet", parquet_bytes(candles(), row_group_size=6))
    bad = csv_text(candles()).decode().replace(",102.0,104.0,", ",n/a,104.0,", 1)  # one unreadable price
    write(root, "binance/CCC_USDT-1m.csv", bad.encode())
    write(root, "binance/DDD_USDT-1m.csv.gz", gzip.compress(csv_text(candles(), header=False, sep=";")))
    klines = zipped({"EEEUSDT-1m-2024-01.csv": kline_text(candles(), header=False)})
    write(root, "binance/EEEUSDT-1m-2024-01.zip", klines)
    digest = hashlib.sha256(klines).hexdigest().encode()
    write(root, "binance/EEEUSDT-1m-2024-01.zip.CHECKSUM", digest + b"  EEEUSDT-1m-2024-01.zip\n")
    write(root, "binance/FFF_USDT-1m.parquet", parquet_bytes(candles())[:-40])  # truncated
    write(root, "binance/futures/GGG_USDT_USDT-1m-futures.feather", feather_bytes(candles()))
    write(root, "binance/HHH_USDT-5m.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)


def test_every_format_loads_through_the_landing_loader_and_skips_on_rerun(engine, tmp_path):
    root = tmp_path / "landing"
    _format_folder(root)
    report = load_landing_folder(engine, root, run_id="run-1", batch_rows=7)
    by_path = {f.path: f for f in report.files}
    assert {p: (f.status, f.layout, f.fetched, f.inserted, f.quarantined) for p, f in by_path.items()} == {
        "binance/AAA_USDT-1m.feather": ("loaded", "feather", 20, 20, 0),
        "binance/BBB_USDT-1m.parquet": ("loaded", "parquet", 20, 20, 0),
        "binance/CCC_USDT-1m.csv": ("partial", "csv:header", 20, 19, 1),
        "binance/DDD_USDT-1m.csv.gz": ("loaded", "gzip:csv:no-header", 20, 20, 0),
        "binance/EEEUSDT-1m-2024-01.zip": ("loaded", "zip:csv:binance-klines", 20, 20, 0),
        "binance/FFF_USDT-1m.parquet": ("failed", None, 0, 0, 0),
        "binance/futures/GGG_USDT_USDT-1m-futures.feather": ("loaded", "feather", 20, 20, 0),
        "binance/HHH_USDT-5m.h5": ("failed", None, 0, 0, 0),
    }
    assert by_path["binance/futures/GGG_USDT_USDT-1m-futures.feather"].symbol == "GGG/USDT:USDT"
    assert by_path["binance/FFF_USDT-1m.parquet"].error.startswith(
        "binance/FFF_USDT-1m.parquet: cannot read the Parquet data"
    )
    assert by_path["binance/CCC_USDT-1m.csv"].quarantine_reasons == {"non_numeric": 1}
    assert report.balanced and report.inserted == 119
    assert scalar(engine, "SELECT count(*) FROM ohlcv") == 119
    assert scalar(engine, "SELECT count(DISTINCT symbol) FROM ohlcv") == 6
    assert scalar(engine, "SELECT message FROM quarantine") == "row 4: open='n/a' is not a finite number"
    assert scalar(engine, "SELECT sum(trades_count) FROM ohlcv WHERE symbol = 'EEE/USDT'") == 7 * 20

    before = scalar(engine, "SELECT max(xmin::text::bigint) FROM ohlcv")
    again = load_landing_folder(engine, root, run_id="run-2", batch_rows=7)
    assert {f.path: f.status for f in again.files if f.status != "skipped"} == {
        "binance/FFF_USDT-1m.parquet": "failed",  # failed files are retried
        "binance/HHH_USDT-5m.h5": "failed",
    }
    assert again.fetched == 0 and scalar(engine, "SELECT max(xmin::text::bigint) FROM ohlcv") == before
    assert scalar(engine, "SELECT count(*) FROM quarantine") == 1
    with engine.connect() as conn:
        entries = ledger.latest_entries(conn)
    assert entries["binance/BBB_USDT-1m.parquet"].rows_loaded == 20
    assert entries["binance/EEEUSDT-1m-2024-01.zip"].layout == "zip:csv:binance-klines"


def test_a_failure_in_a_later_batch_keeps_the_earlier_batches_and_says_so(engine, tmp_path):
    root = tmp_path / "landing"
    frame = pd.concat([candles(10), candles(10, step=pd.Timedelta(hours=1), start=T0 + pd.Timedelta(days=1))])
    write(root, "binance/BTC_USDT.csv", csv_text(frame))
    report = load_landing_folder(engine, root, batch_rows=5).files[0]
    assert (report.status, report.fetched, report.inserted, report.quarantined) == ("failed", 10, 10, 0)
    assert report.balanced and report.error.endswith(
        "(the file's first 10 rows were loaded before this and stay; loading the fixed file upserts over them)"
    )
    assert scalar(engine, "SELECT count(*) FROM ohlcv") == 10
    with engine.connect() as conn:
        entry = ledger.latest_entries(conn)["binance/BTC_USDT.csv"]
    assert (entry.status, entry.rows_loaded) == ("failed", 10)
