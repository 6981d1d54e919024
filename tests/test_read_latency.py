"""The short paths of the 1,000-row reads (issue 18) give exactly what the general paths gave.

A small Arrow result becomes a DataFrame column by column instead of through `to_pandas`, the constant
columns of a frame read are built with `pa.repeat`, the statements and read schemas are built once, and
`get_ohlcv` through the reader builds its records from the frame read: each is compared here with the path
it replaces, dtypes and array types included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.maintenance import retention
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to
from market_warehouse.resources.maintenance.policy import parse_policy
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse import records
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.arrow_reads import ArrowReader
from market_warehouse.resources.warehouse.ops import frames
from market_warehouse.resources.warehouse.ops import market as q
from market_warehouse.resources.warehouse.upsert import upsert_dataframe
from tests.maintenance_data import candles as maintenance_candles
from tests.warehouse_data import SERIES, T0, candle_frame

TIME = pa.timestamp("us", "UTC")


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values, dtypes, pandas array types, column index and row index."""
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.dtypes) == list(expected.dtypes)
    assert got.columns.dtype == expected.columns.dtype and type(got.index) is type(expected.index)
    assert [type(got[c].array) for c in got] == [type(expected[c].array) for c in expected]


def every_type(rows: int, nulls: bool) -> pa.Table:
    """A table of every column type the reads return, with or without NULLs in each column."""

    def values(make):
        return [None if nulls and i % 3 == 0 else make(i) for i in range(rows)]

    return pa.table(
        {
            "symbol": pa.array(values(lambda i: f"S{i % 4}'"), pa.string()),
            "source": pa.array(values(lambda i: "rest"), pa.large_string()),
            "time": pa.array(values(lambda i: T0 + timedelta(minutes=i)), TIME),
            "close": pa.array(values(lambda i: 100.0 + i / 7), pa.float64()),
            "score": pa.array(values(lambda i: 90.7 + i % 3), pa.float32()),
            "trades_count": pa.array(values(lambda i: i), pa.int64()),
            "legs": pa.array(values(lambda i: i % 5), pa.int32()),
            "rank": pa.array(values(lambda i: i % 9), pa.int16()),
            "is_anomaly": pa.array(values(lambda i: i % 2 == 0), pa.bool_()),
        }
    )


@pytest.mark.parametrize("rows", [0, 1, 7, 1000])
@pytest.mark.parametrize("nulls", [False, True])
def test_a_small_result_converts_as_to_pandas_does(rows, nulls):
    table = records.text_floats(every_type(rows, nulls))
    small = records._small_frame(table)
    assert small is not None
    assert_same_frame(small, records._pandas_frame(table))
    if nulls and rows > 1:  # NULLs survive: NaN / NaT / <NA>, nullable booleans
        assert small.isna().any().all() and str(small["is_anomaly"].dtype) == "boolean"


def test_what_the_short_path_does_not_convert_goes_through_to_pandas():
    unusual = pa.table(
        {"amount": pa.array([1, 2], pa.decimal128(10, 2)), "day": pa.array([1, 2], pa.date32())}
    )
    assert records._small_frame(unusual) is None
    assert records._small_frame(pa.table({"a": [1.0], "b": [2.0]}).rename_columns(["a", "a"])) is None
    large = every_type(records._SMALL_ROWS + 1, nulls=True)
    assert records._small_frame(large) is None
    assert_same_frame(records.frame_from_arrow(unusual), records._pandas_frame(unusual))


@pytest.fixture
def warehouse(any_engine):
    frame = candle_frame(1500)
    frame["quality_score"] = (frame["volume"] % 10 + 90).round(1)  # `real`: 90.7 must read 90.7
    frame["source"] = ["rest" if i % 2 else None for i in range(len(frame))]
    upsert_dataframe(any_engine, "ohlcv", frame)
    wh = Warehouse(any_engine)
    yield wh
    wh.close()


def test_a_1000_row_read_equals_the_general_paths(warehouse, monkeypatch):
    exchange, symbol, interval = SERIES
    start = T0 + timedelta(minutes=100)
    reads = [
        {"start": start, "limit": 1000},  # the limit's window (limit_window)
        {"start": T0 + timedelta(minutes=1000), "limit": 1000},  # the window falls short: the rest read too
        {"start": start, "end": start + timedelta(minutes=1000)},
        {},
    ]
    fast = [warehouse.get_ohlcv_frame(exchange, symbol, interval, **kwargs) for kwargs in reads]
    fast_records = [warehouse.get_ohlcv(exchange, symbol, interval, **kwargs) for kwargs in reads]
    monkeypatch.setattr(records, "_SMALL_ROWS", -1)  # every frame through to_pandas
    with warehouse.engine.connect() as conn:  # records through psycopg2, as before the reader
        for kwargs, frame, candles in zip(reads, fast, fast_records, strict=True):
            assert_same_frame(frame, warehouse.get_ohlcv_frame(exchange, symbol, interval, **kwargs))
            assert candles == q.get_ohlcv(conn, exchange, symbol, interval, **kwargs)
            assert len(candles) == len(frame) and len(frame) in (500, 1000, 1500)
    assert (fast[0]["quality_score"] == fast[0]["quality_score"].round(1)).all()
    assert set(fast[0]["exchange"]) == {exchange} and set(fast[0]["price"]) == {"trade"}


def test_statements_and_schemas_are_built_once():
    assert sql_text("common/get_ohlcv_frame") is sql_text("common/get_ohlcv_frame")
    assert sql_text("common/get_features_frame", columns=["a"]) is sql_text(
        "common/get_features_frame", columns=("a",)
    )
    assert (
        sql_text("common/get_features_frame", columns=["a"]).text
        != sql_text("common/get_features_frame", columns=["b"]).text
    )
    with pytest.raises(ValueError, match="no \\{columns\\} list"):
        sql_text("common/get_ohlcv", columns=["a"])


def test_constant_columns_have_the_stored_types(warehouse):
    exchange, symbol, interval = SERIES
    table = warehouse.get_ohlcv_frame(exchange, symbol, interval, T0, limit=10, as_arrow=True)
    for name, value in (("exchange", exchange), ("interval", interval), ("price", "trade")):
        column = table.column(name)
        assert column.type == pa.string() and column.null_count == 0
        assert column.unique().to_pylist() == [value]
    assert warehouse.get_ohlcv_frame(
        exchange, symbol, interval, datetime(2030, 1, 1, tzinfo=UTC), limit=10
    ).empty


def test_a_read_says_in_its_own_statement_whether_it_reaches_the_cold_tier(any_engine, safe_tmp, monkeypatch):
    """The cold-tier manifest is read only when the candles' statement says files overlap the range: the
    window of a limit read, a limit per series of many, time ranges read in parallel, and a read of recent
    candles each give what the same read gave before retention moved the old rows to Parquet."""
    now = floor_to(clock.now(), HOUR)
    old = floor_to(now - timedelta(days=60), DAY)
    upsert_dataframe(any_engine, "ohlcv", maintenance_candles("BTC/USDT", old, 3 * 1440))
    upsert_dataframe(any_engine, "ohlcv", maintenance_candles("ETH/USDT", old + DAY, 1440, seed=2))
    upsert_dataframe(any_engine, "ohlcv", maintenance_candles("BTC/USDT", now - 2 * DAY, 600, seed=4))
    monkeypatch.setattr(frames, "_SPLIT_ROWS", 500)  # the long read below in parallel time ranges
    reads = {
        "window": (("BTC/USDT",), {"start": old + timedelta(minutes=30), "limit": 1000}),
        "window, then the rest": (
            ("BTC/USDT",),
            {"start": old + 2 * DAY + timedelta(hours=20), "limit": 1000},
        ),
        "per series": (("BTC/USDT", "ETH/USDT"), {"start": old, "limit": 5}),
        "time ranges": (("BTC/USDT",), {"start": old, "end": now}),
        "recent": (("BTC/USDT",), {"start": now - DAY, "limit": 100}),
    }

    def read_all(wh: Warehouse) -> dict[str, tuple[pd.DataFrame, list]]:
        out = {}
        for name, (symbols, kwargs) in reads.items():
            frame = wh.get_ohlcv_frame("testex", list(symbols), "1m", **kwargs)
            candles = wh.get_ohlcv("testex", symbols[0], "1m", **kwargs) if len(symbols) == 1 else []
            out[name] = (frame, candles)
        return out

    with Warehouse(any_engine) as wh:
        before = read_all(wh)
    policy = parse_policy({"retention": {"ohlcv": {"1m": "30d"}}, "cold": {"ohlcv": str(safe_tmp / "cold")}})
    assert retention.apply_retention(any_engine, policy, now=now).removed
    with Warehouse(any_engine) as wh:
        after = read_all(wh)
        hot_only = wh.get_ohlcv_frame("testex", "BTC/USDT", "1m", old, limit=10, cold=False)
    for name, (frame, candles) in after.items():
        expected, expected_candles = before[name]
        assert_same_frame(frame, expected)
        assert candles == expected_candles, name
        assert bool(frame.attrs.get("tiers")) == (name != "recent"), name
    assert len(after["window"][0]) == 1000 and len(after["window, then the rest"][0]) == 240 + 600
    assert hot_only["time"].min() >= now - 2 * DAY  # cold=False: the database's rows only


def test_a_reader_keeps_its_cursors_and_recovers_from_a_failed_statement(warehouse):
    """Each pooled connection keeps one cursor (not one ADBC statement per read); a statement that fails
    closes its connection, and the next read opens another."""
    reader = ArrowReader(warehouse.engine.url, connections=1)
    try:
        count = sa.text("SELECT count(*) AS n FROM ohlcv WHERE symbol = :symbol")
        assert reader.read(count, {"symbol": SERIES[1]}).column("n").to_pylist() == [1500]
        assert reader.read(count, {"symbol": "NOPE"}).column("n").to_pylist() == [0]
        with pytest.raises(Exception, match="no_such_table"):
            reader.read(sa.text("SELECT * FROM no_such_table"), {})
        assert reader.read(count, {"symbol": SERIES[1]}).column("n").to_pylist() == [1500]
    finally:
        reader.close()
