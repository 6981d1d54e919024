"""Bulk upsert: counts, idempotence, dirty windows, audit, input validation, partitions, concurrency."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.backend import detect
from market_warehouse.resources.database import create_engine
from market_warehouse.resources.warehouse import (
    AuditContext,
    UpsertInputError,
    UpsertResult,
    upsert_dataframe,
    upsert_frame,
    validate_frame,
)
from market_warehouse.resources.warehouse import upsert as upsert_module
from market_warehouse.resources.warehouse.upsert import STRATEGIES, _table_meta, _upsert_validated

START = datetime(2024, 1, 1, tzinfo=UTC)
PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]


def candles(n: int = 240, start: datetime = START, symbols=("BTC/USDT",), seed: int = 0) -> pd.DataFrame:
    """`n` one-minute candles per symbol with random but exact float prices."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        close = 100 + rng.standard_normal(n).cumsum()
        frames.append(
            pd.DataFrame(
                {
                    "exchange": "binance",
                    "symbol": symbol,
                    "interval": "1m",
                    "time": pd.date_range(start, periods=n, freq="min", tz="UTC"),
                    "open": close + rng.random(n),
                    "high": close + 2,
                    "low": close - 2,
                    "close": close,
                    "volume": rng.random(n) * 10,
                    "trades_count": rng.integers(0, 1000, n),
                    "quality_score": rng.random(n).astype("float32") * 100,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def stored(engine, table: str = "ohlcv", order: str = "symbol, time") -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {table} ORDER BY {order}"), conn)


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def prices(engine) -> pd.DataFrame:
    return stored(engine)[["symbol", "time", *PRICE_COLUMNS, "trades_count", "quality_score"]]


# ---------------------------------------------------------------------------------------------- counts


def test_insert_reupsert_and_partial_change_counts(any_engine):
    frame = candles(300, symbols=("BTC/USDT", "ETH/USDT"))
    first = upsert_dataframe(any_engine, "ohlcv", frame, batch_rows=250)
    assert (first.rows, first.inserted, first.updated, first.unchanged) == (600, 600, 0, 0)
    assert first.batches == 3
    assert first.min_time == START and first.max_time == START + timedelta(minutes=299)
    before = stored(any_engine)

    again = upsert_dataframe(any_engine, "ohlcv", frame)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 600)
    after = stored(any_engine)
    pd.testing.assert_frame_equal(before, after)  # nothing rewritten: even ingested_at is untouched

    changed = frame.copy()
    rows = changed.index[::10]
    changed.loc[rows, "close"] += 1.5
    third = upsert_dataframe(any_engine, "ohlcv", changed)
    assert (third.inserted, third.updated, third.unchanged) == (0, len(rows), 600 - len(rows))
    final = stored(any_engine)
    expected = changed.sort_values(["symbol", "time"]).reset_index(drop=True)
    np.testing.assert_array_equal(final["close"].to_numpy(), expected["close"].to_numpy())
    refreshed = final["ingested_at"] != after["ingested_at"]
    assert refreshed.sum() == len(rows)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_merge_strategy_gives_the_same_result(engine, strategy):
    """Join (default), ON CONFLICT with RETURNING old (PG 18+) and ON CONFLICT counting existing rows."""
    meta = _table_meta("ohlcv")
    frame = candles(100)
    with engine.begin() as conn:
        first = _upsert_validated(
            conn, meta, validate_frame("ohlcv", frame), None, strategy=strategy, direct=False
        )
    changed = pd.concat([frame, candles(20, start=START + timedelta(hours=5))], ignore_index=True)
    changed.loc[:9, "volume"] = 0.5
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM aggregate_dirty_windows"))
        second = _upsert_validated(
            conn,
            meta,
            validate_frame("ohlcv", changed),
            AuditContext("t", "r"),
            strategy=strategy,
            direct=False,
        )
    assert (first.inserted, first.updated, first.unchanged) == (100, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (20, 10, 90)
    assert count(engine, "SELECT count(*) FROM aggregate_dirty_windows") == 2  # 00:00 and 05:00
    assert count(engine, "SELECT count(*) FROM audit_log") == 10
    assert count(engine, "SELECT count(*) FROM timeseries_archive") == 10
    back = prices(engine)
    expected = changed.sort_values(["symbol", "time"]).reset_index(drop=True)
    np.testing.assert_array_equal(back["volume"].to_numpy(), expected["volume"].to_numpy())


def test_new_rows_go_straight_to_the_table_only_when_their_range_is_new(engine, monkeypatch):
    """Appends are COPYed into the target; anything that may meet stored rows goes through staging."""
    paths = []
    original = upsert_module._copy

    def spy(conn, statement, payload):
        paths.append(
            "staging"
            if "mw_upsert_stage" in statement.as_string(conn.connection.dbapi_connection)
            else "direct"
        )
        return original(conn, statement, payload)

    monkeypatch.setattr(upsert_module, "_copy", spy)
    btc = candles(120)
    # empty table, one series cut over three batches: each batch is new for that series' own time range
    assert upsert_dataframe(engine, "ohlcv", btc, batch_rows=50).inserted == 120
    later = candles(60, start=START + timedelta(hours=2), seed=3)
    assert upsert_dataframe(engine, "ohlcv", later).inserted == 60  # append after the stored range
    eth = candles(120, symbols=("ETH/USDT",), seed=4)
    assert upsert_dataframe(engine, "ohlcv", eth).inserted == 120  # another series over the same range
    assert paths == ["direct"] * 5
    overlap = pd.concat([btc.iloc[100:], candles(30, start=START + timedelta(hours=3), seed=5)])
    result = upsert_dataframe(engine, "ohlcv", overlap)  # meets stored rows of its series
    assert (result.inserted, result.updated, result.unchanged) == (30, 0, 20)
    assert paths[-1] == "staging"
    assert count(engine, "SELECT count(*) FROM ohlcv") == 330
    with engine.connect() as conn:
        hours = conn.execute(sa.text("SELECT count(*) FROM aggregate_dirty_windows")).scalar_one()
    assert hours == 4  # 00:00, 01:00, 02:00 (both symbols) and 03:00


def test_rows_are_written_series_by_series_within_a_chunk(engine):
    """Interleaved input is stored grouped by series, so reading one series' range touches few pages."""
    frame = candles(30, symbols=("XRP/USDT", "ADA/USDT")).sort_values("time", kind="stable")
    upsert_dataframe(engine, "ohlcv", frame)
    with engine.connect() as conn:
        physical = conn.execute(sa.text("SELECT symbol, time FROM ohlcv ORDER BY ctid")).all()
    symbols = [r.symbol for r in physical]
    assert len(set(symbols[:30])) == 1 and len(set(symbols[30:])) == 1 and symbols[0] != symbols[30]
    assert [r.time for r in physical[:30]] == sorted(r.time for r in physical[:30])


def test_upsert_frame_runs_in_the_callers_transaction(engine):
    frame = candles(50)
    with engine.connect() as conn:
        result = upsert_frame(conn, "ohlcv", frame)
        assert result.inserted == 50
        conn.rollback()
    assert count(engine, "SELECT count(*) FROM ohlcv") == 0
    with engine.begin() as conn:  # two batches in one transaction
        a = upsert_frame(conn, "ohlcv", frame.iloc[:30])
        b = upsert_frame(conn, "ohlcv", frame.iloc[20:])
    assert (a + b).inserted == 50 and (a + b).unchanged == 10 and (a + b).batches == 2
    assert count(engine, "SELECT count(*) FROM ohlcv") == 50


def test_omitted_columns_keep_their_stored_values(engine):
    frame = candles(30)
    frame["vwap"] = 123.0
    frame["source"] = "file"
    upsert_dataframe(engine, "ohlcv", frame)
    partial = frame[["exchange", "symbol", "interval", "time", *PRICE_COLUMNS]].copy()
    partial["close"] += 1
    result = upsert_dataframe(engine, "ohlcv", partial)
    assert result.updated == 30
    rows = stored(engine)
    assert (rows["vwap"] == 123.0).all() and (rows["source"] == "file").all()
    assert (rows["is_anomaly"] == False).all()  # noqa: E712 - server default applied on insert
    with pytest.raises(UpsertInputError, match="missing required"):
        upsert_dataframe(engine, "ohlcv", frame[["exchange", "symbol", "interval", "time"]])


def test_key_only_frames_insert_missing_rows_and_touch_nothing_else(engine):
    """market_metrics has no required value column: a key-only frame inserts new keys, DO NOTHING otherwise."""
    keys = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "interval": "1h",
            "time": pd.date_range(START, periods=4, freq="h", tz="UTC"),
        }
    )
    upsert_dataframe(engine, "market_metrics", keys.iloc[:2].assign(last_price=5.0))
    result = upsert_dataframe(engine, "market_metrics", keys)
    assert (result.inserted, result.updated, result.unchanged) == (2, 0, 2)
    assert stored(engine, "market_metrics", "time")["last_price"].tolist()[:2] == [5.0, 5.0]


# ------------------------------------------------------------------------------------------ other tables


def test_other_column_types_round_trip_exactly(engine):
    """JSONB, numeric, float4, int and boolean columns survive the binary COPY: a re-upsert writes nothing."""
    times = pd.date_range(START, periods=20, freq="h", tz="UTC")
    features = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "interval": "1h",
            "feature_set": "ta",
            "time": times,
            "rsi": np.linspace(10, 90, 20),
            "macd": [None] * 10 + list(np.linspace(-1, 1, 10)),
            "extra": [{"n": i, "tags": ["a", "b"], "nested": {"x": 0.1 * i}} for i in range(20)],
        }
    )
    assert upsert_dataframe(engine, "features", features).inserted == 20
    assert upsert_dataframe(engine, "features", features).unchanged == 20
    back = stored(engine, "features", "time")
    assert back["extra"].tolist() == features["extra"].tolist()
    assert back["macd"].isna().sum() == 10

    equity = pd.DataFrame(
        {
            "portfolio": "main",
            "time": times,
            "equity": [Decimal("10000.1234567891"), *[1000.5 + i for i in range(19)]],
            "cash": [Decimal(i) / 3 for i in range(20)],
        }
    )
    equity_meta = _table_meta("equity_curve")
    missing = [c for c, col in equity_meta.columns.items() if col.required and c not in equity]
    for column in missing:  # fill whatever else the model requires, with the right kind of value
        kind = equity_meta.columns[column].kind
        equity[column] = {"numeric": Decimal("1.5"), "float8": 1.5, "int4": 1, "text": "x"}[kind]
    assert upsert_dataframe(engine, "equity_curve", equity).inserted == 20
    again = upsert_dataframe(engine, "equity_curve", equity)
    assert again.unchanged == 20, "numeric values must round-trip exactly"
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT equity, cash FROM equity_curve ORDER BY time")).all()
    assert back[0].equity == Decimal("10000.1234567891") and back[1].equity == Decimal("1000.5")
    assert back[1].cash == Decimal("0.3333333333")


# ------------------------------------------------------------------------------------------ dirty windows


def test_dirty_windows_record_only_hours_actually_written(engine):
    frame = candles(180)  # 00:00 … 02:59 → three hours
    upsert_dataframe(engine, "ohlcv", frame)
    with engine.connect() as conn:
        hours = (
            conn.execute(
                sa.text(
                    "SELECT bucket_start FROM aggregate_dirty_windows WHERE table_name = 'ohlcv' ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    assert hours == [START, START + timedelta(hours=1), START + timedelta(hours=2)]

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM aggregate_dirty_windows"))
    upsert_dataframe(engine, "ohlcv", frame)  # unchanged: no dirty window
    assert count(engine, "SELECT count(*) FROM aggregate_dirty_windows") == 0

    changed = frame.copy()
    changed.loc[changed["time"] == START + timedelta(hours=1, minutes=30), "close"] += 1
    upsert_dataframe(engine, "ohlcv", changed)
    with engine.connect() as conn:
        hours = conn.execute(sa.text("SELECT bucket_start FROM aggregate_dirty_windows")).scalars().all()
    assert hours == [START + timedelta(hours=1)]


def test_tables_without_aggregates_record_no_dirty_windows(engine):
    trades = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "trade_id": [str(i) for i in range(10)],
            "time": pd.date_range(START, periods=10, freq="s", tz="UTC"),
            "price": 100.0,
            "amount": 1.0,
            "side": ["buy", "sell"] * 5,
        }
    )
    assert upsert_dataframe(engine, "market_trades", trades).inserted == 10
    assert count(engine, "SELECT count(*) FROM aggregate_dirty_windows") == 0


# ----------------------------------------------------------------------------------------------- audit


def test_audit_archives_the_old_row_and_logs_the_change(any_engine):
    frame = candles(60)
    upsert_dataframe(any_engine, "ohlcv", frame, audit=AuditContext("run-1", "initial load"))
    assert count(any_engine, "SELECT count(*) FROM audit_log") == 0  # inserts are not changes

    corrected = frame.copy()
    corrected.loc[5, "close"] = 999.0
    corrected.loc[5, "volume"] = 7.0
    corrected.loc[6, "high"] = 1e6
    old5 = frame.loc[5]
    result = upsert_dataframe(
        any_engine, "ohlcv", corrected, audit=AuditContext("run-2", "exchange correction")
    )
    assert (result.updated, result.unchanged) == (2, 58)
    with any_engine.connect() as conn:
        logs = conn.execute(sa.text("SELECT * FROM audit_log ORDER BY row_key->>'time'")).mappings().all()
        archive = (
            conn.execute(sa.text("SELECT * FROM timeseries_archive ORDER BY row_key->>'time'"))
            .mappings()
            .all()
        )
    assert len(logs) == 2 and len(archive) == 2
    first = logs[0]
    assert first["operation"] == "update" and first["table_name"] == "ohlcv"
    assert first["changed_by"] == "run-2" and first["reason"] == "exchange correction"
    assert first["changed_fields"] == ["close", "volume"]
    assert first["row_key"] == {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "interval": "1m",
        "price": "trade",  # the price kind is part of the candle key (issue 13)
        "time": "2024-01-01T00:05:00+00:00",
    }
    assert first["old_data"]["close"] == old5["close"] and first["new_data"]["close"] == 999.0
    assert logs[1]["changed_fields"] == ["high"]
    assert archive[0]["row_data"]["close"] == old5["close"]
    assert archive[0]["archived_by"] == "run-2" and archive[0]["reason"] == "exchange correction"
    assert archive[0]["row_key"] == first["row_key"]


# ------------------------------------------------------------------------------------------- bad input


def _bad_inputs():
    def missing_key(f):
        return f.drop(columns=["symbol"])

    def strings_in_price(f):
        f = f.astype({"close": object})
        f.loc[7, "close"] = "12.5"
        f.loc[9, "close"] = "n/a"
        return f

    def naive_times(f):
        return f.assign(time=f["time"].dt.tz_localize(None))

    def conflicting_duplicates(f):
        dup = f.iloc[[3]].copy()
        dup["close"] += 1
        return pd.concat([f, dup])

    def unknown_column(f):
        return f.assign(colse=1.0)

    def null_price(f):
        f = f.copy()
        f.loc[4, "open"] = np.nan
        return f

    def text_in_int(f):
        return f.assign(trades_count=["x"] * len(f))

    return [
        pytest.param(missing_key, ["symbol"], "missing required column", [], id="missing-key-column"),
        pytest.param(strings_in_price, ["close"], "non-numeric", [7, 9], id="strings-in-price"),
        pytest.param(naive_times, ["time"], "naive timestamps", list(range(5)), id="naive-timestamps"),
        pytest.param(
            conflicting_duplicates, ["close"], "duplicate keys", [3, 3], id="conflicting-duplicates"
        ),
        pytest.param(unknown_column, ["colse"], "unknown column", [], id="unknown-column"),
        pytest.param(null_price, ["open"], "NOT NULL", [4], id="null-in-not-null"),
        pytest.param(text_in_int, ["trades_count"], "dtype", list(range(5)), id="strings-in-integer"),
    ]


@pytest.mark.parametrize(("spoil", "columns", "rule", "first_rows"), _bad_inputs())
def test_bad_input_is_refused_before_any_write(engine, spoil, columns, rule, first_rows):
    good = candles(40)
    upsert_dataframe(engine, "ohlcv", good.iloc[:20])
    before = stored(engine)
    bad = spoil(pd.concat([good.iloc[:20].assign(close=good["close"].iloc[:20] + 1), good.iloc[20:]]))
    with pytest.raises(UpsertInputError) as caught:
        upsert_dataframe(engine, "ohlcv", bad, batch_rows=10)
    error = caught.value
    message = str(error)
    assert message.startswith("ohlcv: ")
    assert rule in message
    for column in columns:
        assert column in error.columns and column in message
    assert error.rows[: len(first_rows)] == first_rows
    for label in first_rows[:3]:
        assert f"[{label}]" in message
    pd.testing.assert_frame_equal(stored(engine), before)  # nothing half-written
    with engine.begin() as conn, pytest.raises(UpsertInputError):
        upsert_frame(conn, "ohlcv", bad)


def test_identical_duplicates_are_collapsed(engine):
    frame = candles(20)
    doubled = pd.concat([frame, frame.iloc[:5]])
    result = upsert_dataframe(engine, "ohlcv", doubled)
    assert (result.rows, result.inserted, result.unchanged) == (25, 20, 5)
    assert count(engine, "SELECT count(*) FROM ohlcv") == 20


def test_other_input_rules(engine):
    frame = candles(10)
    with pytest.raises(UpsertInputError, match="not a time-series table"):
        upsert_dataframe(engine, "no_such_table", frame)
    with pytest.raises(UpsertInputError, match="timestamps"):
        validate_frame("ohlcv", frame.assign(time=frame["time"].astype(str)))
    with pytest.raises(UpsertInputError, match="JSON"):
        validate_frame(
            "features",
            pd.DataFrame(
                {
                    "exchange": ["b"],
                    "symbol": ["s"],
                    "interval": ["1h"],
                    "feature_set": ["ta"],
                    "time": [START],
                    "extra": [{"x": float("nan")}],
                }
            ),
        )
    with pytest.raises(UpsertInputError, match="non-integral"):
        validate_frame("ohlcv", frame.assign(trades_count=1.5))
    # other zones are converted to UTC, integral floats and nullable ints are accepted
    shifted = frame.assign(
        time=frame["time"].dt.tz_convert("Asia/Kolkata"),
        trades_count=pd.array([1.0, None] * 5, dtype="Float64"),
    )
    valid = validate_frame("ohlcv", shifted)
    assert str(valid["time"].dt.tz) == "UTC" and valid["time"].iloc[0] == START
    assert valid["trades_count"].dtype == "Int64" and valid["trades_count"].isna().sum() == 5
    assert list(valid.columns)[:4] == ["exchange", "symbol", "interval", "time"]
    empty = upsert_dataframe(engine, "ohlcv", frame.iloc[:0])
    assert empty == UpsertResult.empty("ohlcv")


# ------------------------------------------------------------------------------------------ partitions


def test_rows_far_outside_prepared_partitions(any_engine):
    old = candles(10, start=datetime(1995, 3, 1, tzinfo=UTC))
    future = candles(10, start=datetime(2090, 6, 1, tzinfo=UTC))
    result = upsert_dataframe(any_engine, "ohlcv", pd.concat([old, future], ignore_index=True))
    assert result.inserted == 20
    assert count(any_engine, "SELECT count(*) FROM ohlcv") == 20
    with any_engine.connect() as conn:
        caps = detect(conn)
        if caps.native_partitions:
            assert conn.execute(sa.text("SELECT count(*) FROM ohlcv_default")).scalar_one() == 0
            # only the two weeks touched got partitions, not the 95 years between them
            parts = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'ohlcv'::regclass AND c.relname LIKE 'ohlcv_p19%'"
                )
            ).scalar_one()
            assert parts == 1
            routed = (
                conn.execute(sa.text("SELECT DISTINCT tableoid::regclass::text FROM ohlcv ORDER BY 1"))
                .scalars()
                .all()
            )
            assert len(routed) == 2 and all(name.startswith("ohlcv_p") for name in routed)


# ----------------------------------------------------------------------------------------- concurrency


def _load_in_process(url: str, start_minute: int, rows: int, barrier, results) -> None:
    engine = create_engine(url)
    try:
        full = candles(1800, symbols=("BTC/USDT", "ETH/USDT"))
        window = (full["time"] >= START + timedelta(minutes=start_minute)) & (
            full["time"] < START + timedelta(minutes=start_minute + rows)
        )
        frame = full[window]
        validate_frame("ohlcv", frame)  # warm up imports and caches before the race starts
        barrier.wait(timeout=60)
        result = upsert_dataframe(engine, "ohlcv", frame, batch_rows=150)
        results.put((result.inserted, result.updated, result.unchanged))
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))
        raise
    finally:
        engine.dispose()


def test_two_processes_upserting_one_range_concurrently(db_url):
    """Same overlapping range from two processes: no error, no duplicate, no deadlock, same final table."""
    url = db_url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_load_in_process, args=(url, offset, 1200, barrier, queue))
        for offset in (0, 600)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(isinstance(r, tuple) for r in results), results
    assert [w.exitcode for w in workers] == [0, 0]
    engine = create_engine(db_url)
    try:
        # every candle was inserted exactly once; the overlap (600 minutes x 2 symbols) was seen twice
        assert sum(r[0] for r in results) == 1800 * 2
        assert sum(r[1] for r in results) == 0
        assert sum(r[2] for r in results) == 600 * 2
        assert count(engine, "SELECT count(*) FROM ohlcv") == 3600
        concurrent = prices(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE ohlcv"))
        single = candles(1800, symbols=("BTC/USDT", "ETH/USDT"))
        upsert_dataframe(engine, "ohlcv", single)
        pd.testing.assert_frame_equal(prices(engine), concurrent)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------ TimescaleDB


@pytest.mark.parametrize("any_backend_url", ["timescaledb"], indirect=True)
def test_upsert_into_a_compressed_chunk(any_engine):
    frame = candles(120)
    upsert_dataframe(any_engine, "ohlcv", frame)
    with any_engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE ohlcv SET (timescaledb.compress, timescaledb.compress_segmentby = "
                "'exchange, symbol, interval', timescaledb.compress_orderby = 'time DESC')"
            )
        )
        chunks = conn.execute(sa.text("SELECT compress_chunk(c) FROM show_chunks('ohlcv') c")).all()
    assert chunks
    with any_engine.connect() as conn:
        compressed = conn.execute(
            sa.text(
                "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'ohlcv' AND is_compressed"
            )
        ).scalar_one()
    assert compressed >= 1
    changed = frame.copy()
    changed.loc[::4, "close"] += 10
    added = candles(10, start=START + timedelta(minutes=120))
    result = upsert_dataframe(any_engine, "ohlcv", pd.concat([changed, added], ignore_index=True))
    assert (result.inserted, result.updated, result.unchanged) == (10, 30, 90)
    assert count(any_engine, "SELECT count(*) FROM ohlcv") == 130
    back = stored(any_engine)
    np.testing.assert_array_equal(back["close"].to_numpy()[:120], changed["close"].to_numpy())
