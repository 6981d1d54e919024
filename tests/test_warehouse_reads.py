"""The frame reads at wire speed (ADBC, `resources.warehouse.arrow_reads`): equal to the connection path.

The reference is the path the API used before: the same functions run on a SQLAlchemy connection (psycopg2,
one Python record per row). Every new option is checked against it: multi-series calls, the Arrow result,
reads cut into parallel parts, the trades and features frames, and the async API.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from market_warehouse.resources.analytics.features import FEATURE_COLUMNS, read_features
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.arrow_reads import ArrowReader, literal, render
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse
from market_warehouse.resources.warehouse.ops import frames
from market_warehouse.resources.warehouse.ops import market as q
from market_warehouse.resources.warehouse.records import Candle, Trade, frame_from_arrow, to_frame
from market_warehouse.resources.warehouse.upsert import upsert_dataframe

T0 = datetime(2024, 3, 4, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def candles(symbol: str, n: int = 300, seed: int = 0) -> pd.DataFrame:
    """1m candles with every kind of value a read must carry: NULLs, a `real` score, a source text."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": symbol,
            "interval": "1m",
            "time": pd.date_range(T0, periods=n, freq="min", tz="UTC"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.uniform(1, 50, n),
            "trades_count": pd.array(np.where(np.arange(n) % 7 == 0, None, np.arange(n)), dtype="Int64"),
            "vwap": np.where(np.arange(n) % 5 == 0, np.nan, close),
            "quality_score": np.round(rng.uniform(80, 100, n), 1),  # 90.7 is not exact as a float32
            "source": np.where(np.arange(n) % 2 == 0, "rest", None),
        }
    )
    return frame


@pytest.fixture
def stored(any_engine):
    frames = [candles(s, seed=i) for i, s in enumerate(SYMBOLS)]
    upsert_dataframe(any_engine, "ohlcv", pd.concat(frames, ignore_index=True))
    wh = Warehouse(any_engine)
    yield wh
    wh.close()


def old_path(wh: Warehouse, symbol: str, **kwargs) -> pd.DataFrame:
    """What get_ohlcv_frame returned before: the records of a psycopg2 connection, as a frame."""
    with wh.engine.connect() as conn:
        return to_frame(q.get_ohlcv(conn, "binance", symbol, "1m", **kwargs), Candle)


def test_a_series_reads_as_before(stored):
    for kwargs in (
        {},
        {"start": T0 + timedelta(minutes=10), "end": T0 + timedelta(minutes=50)},
        {"limit": 7},
    ):
        got = stored.get_ohlcv_frame("binance", "ETH/USDT", "1m", **kwargs)
        pd.testing.assert_frame_equal(got, old_path(stored, "ETH/USDT", **kwargs))
    frame = stored.get_ohlcv_frame("binance", "ETH/USDT", "1m")
    assert (frame["quality_score"] == frame["quality_score"].round(1)).all()  # 90.7, not 90.69999695
    assert frame["trades_count"].isna().any() and frame["vwap"].isna().any() and frame["source"].isna().any()
    # Records through the reader equal records through a connection.
    with stored.engine.connect() as conn:
        assert stored.get_ohlcv("binance", "SOL/USDT", "1m") == q.get_ohlcv(conn, "binance", "SOL/USDT", "1m")


def test_many_series_in_one_call(stored):
    expected = pd.concat([old_path(stored, s) for s in sorted(SYMBOLS)], ignore_index=True)
    got = stored.get_ohlcv_frame("binance", list(SYMBOLS)[::-1], "1m")
    pd.testing.assert_frame_equal(got, expected)
    limited = stored.get_ohlcv_frame("binance", list(SYMBOLS), "1m", limit=5)
    expected = pd.concat([old_path(stored, s, limit=5) for s in sorted(SYMBOLS)], ignore_index=True)
    pd.testing.assert_frame_equal(limited, expected)
    assert stored.get_ohlcv_frame("binance", ["NOPE/USDT", "BTC/USDT"], "1m").equals(
        old_path(stored, "BTC/USDT")
    )
    with pytest.raises(ValueError):
        stored.get_ohlcv_frame("binance", [], "1m")


def test_the_connection_path_and_one_reader_connection_give_the_same(stored):
    """A caller's own connection (its transaction) and a reader of one connection (no parallel parts)."""
    symbols = list(SYMBOLS)
    expected = stored.get_ohlcv_frame("binance", symbols, "1m")
    with stored.engine.connect() as conn:
        pd.testing.assert_frame_equal(q.get_ohlcv_frame(conn, "binance", symbols, "1m"), expected)
    single = ArrowReader(stored.engine.url, connections=1)
    try:
        pd.testing.assert_frame_equal(q.get_ohlcv_frame(single, "binance", symbols, "1m"), expected)
    finally:
        single.close()


def test_a_long_range_is_read_in_parallel_time_ranges(stored, monkeypatch):
    start, end = T0, T0 + timedelta(minutes=300)
    whole = stored.get_ohlcv_frame("binance", "BTC/USDT", "1m", start, end)
    parts = []
    read_parts = ArrowReader.read_parts

    def spy(self, statements):
        parts.extend(params for _, params in statements)
        return read_parts(self, statements)

    monkeypatch.setattr(frames, "_SPLIT_ROWS", 10)
    monkeypatch.setattr(ArrowReader, "read_parts", spy)
    cut = stored.get_ohlcv_frame("binance", "BTC/USDT", "1m", start, end)
    assert len(parts) == stored.reader.parallel >= 2
    assert parts[0]["start"] == start and parts[-1]["end"] == end
    pd.testing.assert_frame_equal(cut, whole)
    assert len(cut) == 300


def test_arrow_results_have_the_stored_types(stored):
    table = stored.get_ohlcv_frame("binance", list(SYMBOLS), "1m", as_arrow=True)
    assert isinstance(table, pa.Table) and table.num_rows == 900
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["time"] == pa.timestamp("us", tz="UTC")
    assert types["quality_score"] == pa.float32() and types["trades_count"] == pa.int64()
    assert types["exchange"] == pa.string() and types["is_anomaly"] == pa.bool_()
    assert not any(f.metadata for f in table.schema)
    pd.testing.assert_frame_equal(
        frame_from_arrow(table), stored.get_ohlcv_frame("binance", list(SYMBOLS), "1m")
    )


def test_trades_frames(any_engine):
    rng = np.random.default_rng(3)
    n = 200
    trades = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": np.where(np.arange(n) % 2 == 0, "BTC/USDT", "ETH/USDT"),
            "trade_id": [f"t{i}" for i in range(n)],
            "time": T0 + pd.to_timedelta(np.arange(n) // 3, unit="s"),
            "price": rng.uniform(100, 101, n),
            "amount": rng.uniform(0, 1, n),
            "cost": np.where(np.arange(n) % 4 == 0, np.nan, 1.0),
            "side": np.where(np.arange(n) % 3 == 0, None, "buy"),
            "is_buyer_maker": pd.array(
                np.where(np.arange(n) % 5 == 0, None, np.arange(n) % 2 == 0), "boolean"
            ),
        }
    )
    wh = Warehouse(any_engine)
    try:
        wh.insert_market_trades(trades)
        for symbol in ("BTC/USDT", "ETH/USDT"):
            got = wh.get_market_trades_frame("binance", symbol)
            pd.testing.assert_frame_equal(got, to_frame(wh.get_market_trades("binance", symbol), Trade))
        both = wh.get_market_trades_frame("binance", ["ETH/USDT", "BTC/USDT"], limit=10)
        assert list(both["symbol"]) == ["BTC/USDT"] * 10 + ["ETH/USDT"] * 10
        assert wh.get_market_trades_frame("binance", "BTC/USDT", as_arrow=True).num_rows == 100
    finally:
        wh.close()


def test_features_frames(any_engine):
    rng = np.random.default_rng(4)
    times = pd.date_range(T0, periods=50, freq="h", tz="UTC")
    rows = pd.DataFrame({"time": times, **{c: rng.normal(size=50) for c in FEATURE_COLUMNS}})
    rows.loc[::4, "rsi"] = np.nan
    frames = [
        rows.assign(exchange="binance", symbol=s, interval="1h", feature_set="base")
        for s in ("A/USDT", "B/USDT")
    ]
    upsert_dataframe(any_engine, "features", pd.concat(frames, ignore_index=True))
    wh = Warehouse(any_engine)
    try:
        got = wh.get_features_frame("binance", "A/USDT", "1h", "base", T0, T0 + timedelta(hours=30))
        with any_engine.connect() as conn:
            before = read_features(conn, ("binance", "A/USDT", "1h"), "base", T0, T0 + timedelta(hours=30))
        pd.testing.assert_frame_equal(got[["time", *FEATURE_COLUMNS]], before, check_dtype=False)
        assert str(got["time"].dtype) == "datetime64[us, UTC]" and len(got) == 30
        both = wh.get_features_frame("binance", ["B/USDT", "A/USDT"], "1h", "base")
        assert list(both["symbol"].unique()) == ["A/USDT", "B/USDT"] and len(both) == 100
        assert (both["feature_set"] == "base").all() and (both["interval"] == "1h").all()
        limited = wh.get_features_frame("binance", ["B/USDT", "A/USDT"], "1h", "base", limit=5)
        assert list(limited.columns) == list(both.columns) and len(limited) == 10
        pd.testing.assert_frame_equal(
            limited[limited["symbol"] == "A/USDT"].reset_index(drop=True), got.iloc[:5], check_like=True
        )
    finally:
        wh.close()


def test_sql_text_fills_the_column_list_with_quoted_identifiers():
    """The feature frame reads take their value columns from the model: a new feature needs no SQL edit."""
    statement = str(sql_text("common/get_features_frame", columns=["rsi", 'odd"name']))
    assert 'SELECT symbol, time, "rsi", "odd""name"\n' in statement
    with pytest.raises(ValueError, match="get_ohlcv_frame.sql has no {columns} list"):
        sql_text("common/get_ohlcv_frame", columns=["rsi"])


def test_async_reads_equal_the_sync_ones(stored, any_backend_url):
    symbols = list(SYMBOLS)

    async def main():
        async with AsyncWarehouse(any_backend_url) as awh:
            return (
                await awh.get_ohlcv_frame("binance", symbols, "1m", limit=20),
                await awh.get_ohlcv_frame("binance", "BTC/USDT", "1m", as_arrow=True),
                await awh.get_ohlcv("binance", "BTC/USDT", "1m", limit=5),
            )

    frame, table, records = asyncio.run(main())
    pd.testing.assert_frame_equal(frame, stored.get_ohlcv_frame("binance", symbols, "1m", limit=20))
    assert table.equals(stored.get_ohlcv_frame("binance", "BTC/USDT", "1m", as_arrow=True))
    assert records == stored.get_ohlcv("binance", "BTC/USDT", "1m", limit=5)


def test_parameters_are_literals_that_cannot_escape(stored):
    hostile = "x'; DROP TABLE ohlcv; --\nSELECT 1"
    assert stored.get_ohlcv_frame("binance", [hostile, "BTC/USDT"], "1m").equals(old_path(stored, "BTC/USDT"))
    assert stored.get_ohlcv_frame(hostile, hostile, "1m").empty
    with stored.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ohlcv")).scalar() == 900
    sql = render(sa.text("SELECT :a -- :a in a comment\n"), {"a": "it's\n-- x"})
    assert sql.strip() == "SELECT 'it''s\n-- x'"
    for value in (datetime(2024, 1, 1), object(), "a\x00b"):
        with pytest.raises((TypeError, ValueError)):
            literal(value)


def test_without_an_adbc_connection_reads_go_through_the_engine(stored, monkeypatch, caplog):
    """A URL libpq cannot open as it is (or no driver): same results through the engine, logged once, and
    the message does not carry the URL."""
    import adbc_driver_postgresql.dbapi as adbc

    expected = stored.get_ohlcv_frame("binance", list(SYMBOLS), "1m", limit=3)
    records = stored.get_ohlcv("binance", "BTC/USDT", "1m", limit=3)
    secret_url = "postgresql://postgres:s3cret@nowhere/db"

    def refuse(uri, **kwargs):
        raise adbc.OperationalError(f"could not connect to {uri}")

    monkeypatch.setattr(adbc, "connect", refuse)
    wh = Warehouse(stored.engine)
    wh._reader = ArrowReader(secret_url)
    try:
        with caplog.at_level("WARNING"):
            pd.testing.assert_frame_equal(
                wh.get_ohlcv_frame("binance", list(SYMBOLS), "1m", limit=3), expected
            )
            assert wh.get_ohlcv("binance", "BTC/USDT", "1m", limit=3) == records
        warnings = [r.getMessage() for r in caplog.records if "ADBC" in r.getMessage()]
        assert len(warnings) == 1 and "s3cret" not in warnings[0]
    finally:
        wh.close()


def test_limited_reads_without_an_end_see_past_gaps(stored):
    """With a limit and no end, the window of `limit` intervals is read first (limit_window); a series
    with a gap there still gets its next candles from after the gap, singly and among many."""
    gap_start = T0 + timedelta(days=3)
    later = candles("BTC/USDT", n=20, seed=9).assign(time=lambda f: f["time"] - T0 + gap_start)
    upsert_dataframe(stored.engine, "ohlcv", later)
    start = T0 + timedelta(minutes=290)  # 10 stored candles left before the gap
    got = stored.get_ohlcv("binance", "BTC/USDT", "1m", start, limit=15)
    expected = [*pd.date_range(start, periods=10, freq="min"), *later["time"].iloc[:5]]
    assert [c.time for c in got] == [t.to_pydatetime() for t in expected]
    frame = stored.get_ohlcv_frame("binance", ["BTC/USDT", "ETH/USDT"], "1m", start, limit=15)
    assert list(frame.loc[frame["symbol"] == "BTC/USDT", "time"]) == list(expected)
    assert (frame["symbol"] == "ETH/USDT").sum() == 10  # ETH has no candles after the gap
    one = stored.get_ohlcv_frame("binance", "BTC/USDT", "1m", start, limit=15)
    assert list(one["time"]) == list(expected)


def test_a_value_cannot_escape_a_comment_of_the_sql_files(stored):
    """The SQL files mention their `:parameters` in comments; on a psycopg2 connection the value would be
    interpolated there too, and a newline would end the comment: sql_text drops comments first."""
    hostile = "a\n; CREATE TEMP TABLE escaped (x int); --"
    with stored.engine.connect() as conn:
        assert q.get_ohlcv_frame(conn, "binance", [hostile], "1h").empty  # '1h': the existence query runs
        assert not conn.exec_driver_sql("SELECT to_regclass('pg_temp.escaped') IS NOT NULL").scalar()
