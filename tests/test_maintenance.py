"""Maintenance: aggregates, compression, retention, partitions and stats on every backend.

The behaviour common to the backends runs on `any_engine` (embedded PostgreSQL, plus TimescaleDB full /
Apache-only when TIMESCALEDB_URL / TIMESCALEDB_APACHE_URL are set). Data is small and sparse: a few hours
of 1m candles at chosen ages, so the partitions/chunks they fall in are known.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from market_warehouse.resources.backend import Capabilities
from market_warehouse.resources.maintenance import compression, partitions, retention, stats
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to, refresh_aggregates, windows
from market_warehouse.resources.maintenance.policy import (
    ALL_INTERVALS,
    DEFAULT_POLICY,
    MaintenancePolicy,
    parse_policy,
)
from market_warehouse.resources.partitioning import PARTITIONS_AHEAD
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.warehouse import upsert_dataframe
from market_warehouse.resources.warehouse.aggregates import aggregate_query, aggregate_table_for
from tests.maintenance_data import candles, caps_of, count, pieces_of, trades

NOW = floor_to(datetime.now(UTC), HOUR)
POLICY = MaintenancePolicy(
    retention={"ohlcv": {"1m": timedelta(days=90)}, "market_trades": {ALL_INTERVALS: timedelta(days=30)}},
    compress_after=timedelta(days=7),
)
AGG_COLUMNS = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades_count",
    "vwap",
    "candle_count",
]


def expected_rollups(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1h and 1d aggregates computed by pandas from the 1m candles stored now (independent of our SQL)."""
    with engine.connect() as conn:
        raw = pd.read_sql(sa.text("SELECT * FROM ohlcv WHERE interval = '1m' ORDER BY time"), conn)
    raw["time"] = pd.to_datetime(raw["time"], utc=True)

    def rollup(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
        frame = frame.assign(bucket=frame["time"].dt.floor(freq), pv=frame["vwap"] * frame["volume"])
        g = frame.groupby(["exchange", "symbol", "bucket"], sort=True)
        out = g.agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
            quote_volume=("quote_volume", "sum"),
            trades_count=("trades_count", "sum"),
            pv=("pv", "sum"),
            candle_count=("time", "count"),
        )
        out["vwap"] = out["pv"] / out["volume"]
        return out.drop(columns="pv").reset_index()

    return rollup(raw, "1h"), rollup(raw, "1D")


def stored(engine: sa.Engine, view: str) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(f"SELECT * FROM {view} ORDER BY exchange, symbol, bucket"), conn)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(actual) == len(expected) > 0
    actual = actual.sort_values(["exchange", "symbol", "bucket"]).reset_index(drop=True)
    expected = expected.sort_values(["exchange", "symbol", "bucket"]).reset_index(drop=True)
    assert actual["bucket"].tolist() == expected["bucket"].tolist()
    for column in AGG_COLUMNS:
        np.testing.assert_allclose(
            actual[column].astype(float), expected[column].astype(float), rtol=1e-9, err_msg=column
        )


def dirty_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM aggregate_dirty_windows")).scalar_one()


def seed_recent(engine: sa.Engine) -> None:
    """Two symbols, 1m candles over three UTC days, plus 5m and 1h candles the aggregates must ignore."""
    start = floor_to(NOW - timedelta(days=3), DAY) + timedelta(hours=20)
    frames = [
        candles("BTC/USDT", start, 60 * 30, seed=1),  # 30 hours over three days
        candles("ETH/USDT", start + timedelta(minutes=17), 200, seed=2),  # partial hours
        candles("BTC/USDT", start, 48, interval="5m", seed=3),
        candles("BTC/USDT", start, 10, interval="1h", seed=4),
    ]
    for frame in frames:
        upsert_dataframe(engine, "ohlcv", frame)


# ------------------------------------------------------------------------------------------- aggregates


def test_windows_merge_contiguous_buckets_and_cap_their_length():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [t0, t0 + HOUR, t0 + 3 * HOUR, t0 + 2 * HOUR + timedelta(minutes=5)]
    assert windows(hours, HOUR) == [(t0, t0 + 4 * HOUR)]
    assert windows([t0, t0 + 5 * HOUR], HOUR) == [(t0, t0 + HOUR), (t0 + 5 * HOUR, t0 + 6 * HOUR)]
    assert windows([t0 + HOUR * i for i in range(5)], HOUR, longest=2 * HOUR) == [
        (t0, t0 + 2 * HOUR),
        (t0 + 2 * HOUR, t0 + 4 * HOUR),
        (t0 + 4 * HOUR, t0 + 5 * HOUR),
    ]
    assert windows([t0 + 23 * HOUR, t0 + 25 * HOUR], DAY) == [(t0, t0 + 2 * DAY)]


def test_refresh_builds_aggregates_equal_to_a_fresh_group_by(any_engine):
    seed_recent(any_engine)
    assert dirty_count(any_engine) > 0
    result = refresh_aggregates(any_engine)
    assert result.dirty_hours > 0 and dirty_count(any_engine) == 0
    hourly, daily = expected_rollups(any_engine)
    assert_same(stored(any_engine, "ohlcv_1h"), hourly)
    assert_same(stored(any_engine, "ohlcv_1d"), daily)
    assert set(hourly["symbol"]) == {"BTC/USDT", "ETH/USDT"}
    # Nothing changed since: the next refresh has nothing to do.
    again = refresh_aggregates(any_engine)
    assert again.dirty_hours == 0 and not again.hour_windows


def _corrupt(conn: sa.Connection, caps: Capabilities, view: str, bucket: datetime) -> None:
    """Write a wrong close into one stored bucket, behind the view's back."""
    if caps.continuous_aggregates:
        target = conn.execute(
            sa.text(
                "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = :v"
            ),
            {"v": view},
        ).scalar_one()
    else:
        target = f"mw_aggregates.{view}"
    updated = conn.execute(sa.text(f"UPDATE {target} SET close = -1 WHERE bucket = :b"), {"b": bucket})
    assert updated.rowcount >= 1


def test_refresh_recomputes_only_the_touched_buckets(any_engine):
    caps = caps_of(any_engine)
    seed_recent(any_engine)
    refresh_aggregates(any_engine)
    hourly, _ = expected_rollups(any_engine)
    btc = hourly[hourly["symbol"] == "BTC/USDT"]["bucket"]
    untouched_hour, touched_hour = btc.iloc[0].to_pydatetime(), btc.iloc[-1].to_pydatetime()
    assert floor_to(untouched_hour, DAY) != floor_to(touched_hour, DAY)
    with any_engine.begin() as conn:
        _corrupt(conn, caps, "ohlcv_1h", untouched_hour)
        _corrupt(conn, caps, "ohlcv_1d", floor_to(untouched_hour, DAY))

    # A correction of one candle in the touched hour: only that hour and its day are rebuilt.
    fix = candles("BTC/USDT", touched_hour + timedelta(minutes=30), 1, seed=99)
    fix["close"] = 12345.0
    fix["high"] = 12346.0
    assert upsert_dataframe(any_engine, "ohlcv", fix).written == 1
    result = refresh_aggregates(any_engine)
    assert result.dirty_hours == 1
    assert result.hour_windows == [(touched_hour, touched_hour + HOUR)]
    assert result.day_windows == [(floor_to(touched_hour, DAY), floor_to(touched_hour, DAY) + DAY)]
    if not caps.continuous_aggregates:
        # Rollups: one bucket of 1h rebuilt (one series that hour), and the day of each series trading then.
        assert result.rows_1h == 1
        assert result.rows_1d == len(
            hourly[hourly["bucket"].dt.floor("1D") == pd.Timestamp(floor_to(touched_hour, DAY))][
                "symbol"
            ].unique()
        )
    now_1h, now_1d = stored(any_engine, "ohlcv_1h"), stored(any_engine, "ohlcv_1d")
    btc_1h = now_1h[now_1h["symbol"] == "BTC/USDT"].set_index("bucket")
    btc_1d = now_1d[now_1d["symbol"] == "BTC/USDT"].set_index("bucket")
    assert btc_1h.loc[pd.Timestamp(untouched_hour), "close"] == -1  # left alone
    assert btc_1d.loc[pd.Timestamp(floor_to(untouched_hour, DAY)), "close"] == -1
    assert btc_1h.loc[pd.Timestamp(touched_hour), "high"] == 12346.0  # rebuilt with the correction
    assert btc_1d.loc[pd.Timestamp(floor_to(touched_hour, DAY)), "high"] >= 12346.0


def test_aggregate_query_serves_get_ohlcv_shape(any_engine):
    seed_recent(any_engine)
    refresh_aggregates(any_engine)
    assert aggregate_table_for("1h") == "ohlcv_1h"
    assert aggregate_table_for("1d") == "ohlcv_1d"
    assert aggregate_table_for("5m") is None and aggregate_query("5m") is None
    params = {
        "exchange": "testex",
        "symbol": "BTC/USDT",
        "interval": "1h",
        "price": "trade",
        "start": NOW - timedelta(days=10),
        "end": NOW + DAY,
        "limit": 5,
    }
    with any_engine.connect() as conn:
        rows = conn.execute(aggregate_query("1h"), params).mappings().all()
        raw_columns = list(conn.execute(sa.text("SELECT * FROM ohlcv LIMIT 0")).keys())
    hourly, _ = expected_rollups(any_engine)
    first = hourly[hourly["symbol"] == "BTC/USDT"].head(5)
    assert [r["time"] for r in rows] == [b.to_pydatetime() for b in first["bucket"]]
    assert all(r["interval"] == "1h" and r["source"] == "aggregate:ohlcv_1h" for r in rows)
    assert (
        {"exchange", "symbol", "time", "open", "close", "volume", "vwap"}
        <= set(rows[0])
        <= set(raw_columns) | {"candle_count"}
    )


# -------------------------------------------------------------------------------------------- retention


def seed_aged(engine: sa.Engine) -> dict[str, datetime]:
    """Candles and trades at known ages; returns the start time of each group."""
    at = {
        "1m_120d": floor_to(NOW - timedelta(days=120), DAY) + timedelta(hours=10),
        "1m_100d": floor_to(NOW - timedelta(days=100), DAY) + timedelta(hours=10),
        "1m_20d": floor_to(NOW - timedelta(days=20), DAY) + timedelta(hours=10),
        "trades_40d": floor_to(NOW - timedelta(days=40), DAY) + timedelta(hours=3),
        "trades_10d": floor_to(NOW - timedelta(days=10), DAY) + timedelta(hours=3),
    }
    for key in ("1m_120d", "1m_100d", "1m_20d"):
        upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", at[key], 90))
    # Daily candles kept forever next to the oldest 1m ones (same chunk/partition): it must survive.
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", floor_to(at["1m_120d"], DAY), 1, interval="1d"))
    for key in ("trades_40d", "trades_10d"):
        upsert_dataframe(engine, "market_trades", trades(at[key], 5))
    return at


def prepare(engine: sa.Engine) -> None:
    """What the nightly job does before retention: partitions for rows in DEFAULT (plain PostgreSQL)."""
    partitions.manage_partitions(engine)


def test_retention_drops_exactly_the_expired_pieces_and_keeps_the_aggregates(any_engine):
    at = seed_aged(any_engine)
    prepare(any_engine)
    refresh_aggregates(any_engine)
    hourly_before, daily_before = stored(any_engine, "ohlcv_1h"), stored(any_engine, "ohlcv_1d")
    ohlcv_before, trades_before = pieces_of(any_engine, "ohlcv"), pieces_of(any_engine, "market_trades")

    result = retention.apply_retention(any_engine, POLICY, now=NOW)

    ohlcv_cut, trades_cut = NOW - timedelta(days=90), NOW - timedelta(days=30)

    def holding(pieces: dict, ts: datetime) -> str:
        return next(name for name, p in pieces.items() if p.start <= ts < p.end)

    mixed = holding(ohlcv_before, at["1m_120d"])  # holds 1m (expired) and 1d (forever) candles
    expired_ohlcv = {n for n, p in ohlcv_before.items() if p.end <= ohlcv_cut} - {mixed}
    expired_trades = {n for n, p in trades_before.items() if p.end <= trades_cut}
    assert holding(ohlcv_before, at["1m_100d"]) in expired_ohlcv
    assert holding(trades_before, at["trades_40d"]) in expired_trades

    assert {a.piece for a in result.of(retention.DROPPED, "ohlcv")} == expired_ohlcv
    assert {a.piece for a in result.of(retention.DROPPED, "market_trades")} == expired_trades
    assert [(a.piece, a.rows) for a in result.of(retention.ROWS_DELETED)] == [(mixed, 90)]
    assert set(pieces_of(any_engine, "ohlcv")) == set(ohlcv_before) - expired_ohlcv
    assert set(pieces_of(any_engine, "market_trades")) == set(trades_before) - expired_trades

    # Raw rows: expired 1m gone, the daily candles and everything recent kept.
    assert (
        count(any_engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m' AND time < :t", t=ohlcv_cut) == 0
    )
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE interval = '1d'") == 1
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == 90
    assert count(any_engine, "SELECT count(*) FROM market_trades") == 5
    # The aggregates of the dropped candles are still there, unchanged.
    assert_same(stored(any_engine, "ohlcv_1h"), hourly_before)
    assert_same(stored(any_engine, "ohlcv_1d"), daily_before)
    assert len(hourly_before) == 3 * 2  # 90 minutes from hh:00 -> two hours per group

    # A second run finds nothing left to do.
    again = retention.apply_retention(any_engine, POLICY, now=NOW)
    assert not again.of(retention.DROPPED) and not again.of(retention.ROWS_DELETED)


def test_retention_refreshes_the_aggregates_before_dropping(any_engine):
    at = seed_aged(any_engine)
    prepare(any_engine)
    assert dirty_count(any_engine) > 0  # nothing aggregated yet
    result = retention.apply_retention(any_engine, POLICY, now=NOW)
    assert result.refresh is not None and result.refresh.dirty_hours > 0
    assert result.of(retention.DROPPED, "ohlcv")
    hourly = stored(any_engine, "ohlcv_1h")
    old = hourly[hourly["bucket"] < pd.Timestamp(NOW - timedelta(days=90))]
    assert sorted(old["bucket"]) == [
        pd.Timestamp(at[k] + h * HOUR) for k in ("1m_120d", "1m_100d") for h in (0, 1)
    ]
    assert old["candle_count"].sum() == 180


def test_retention_without_refresh_keeps_pieces_with_dirty_hours(any_engine):
    at = seed_aged(any_engine)
    prepare(any_engine)
    result = retention.apply_retention(any_engine, POLICY, now=NOW, refresh_first=False)
    kept = result.of(retention.KEPT_DIRTY, "ohlcv")
    assert any(a.start <= at["1m_100d"] < a.end for a in kept)
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == 270  # nothing lost
    assert result.of(retention.DROPPED, "market_trades")  # tables without aggregates are not held back


def test_retention_waits_for_a_concurrent_load_and_keeps_its_piece(any_engine, caplog):
    """A load into an expired piece that commits while retention drops it: the drop is undone."""
    at = seed_aged(any_engine)
    prepare(any_engine)
    refresh_aggregates(any_engine)
    late = at["1m_100d"] + timedelta(hours=5)
    inserted = threading.Event()

    def load() -> None:  # the upsert's protocol: rows and their dirty hour in one transaction
        with any_engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume) "
                    "VALUES ('testex', 'BTC/USDT', '1m', :t, 1, 1, 1, 1, 1)"
                ),
                {"t": late},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO aggregate_dirty_windows (table_name, bucket_start) VALUES ('ohlcv', :b) "
                    "ON CONFLICT (table_name, bucket_start) DO UPDATE SET recorded_at = now()"
                ),
                {"b": floor_to(late, HOUR)},
            )
            inserted.set()
            time.sleep(1.5)

    loader = threading.Thread(target=load)
    loader.start()
    assert inserted.wait(10)
    result = retention.apply_retention(any_engine, POLICY, now=NOW, refresh_first=False)
    loader.join()
    assert "a load added 1 dirty hours meanwhile" in caplog.text  # caught after the drop, not before
    kept = [a for a in result.of(retention.KEPT_DIRTY, "ohlcv") if a.start <= late < a.end]
    assert len(kept) == 1
    assert (
        count(
            any_engine,
            "SELECT count(*) FROM ohlcv WHERE time >= :a AND time < :b",
            a=kept[0].start,
            b=kept[0].end,
        )
        == 91
    )
    # The next nightly run aggregates the late candle first, then drops the piece.
    again = retention.apply_retention(any_engine, POLICY, now=NOW)
    assert any(a.start <= late < a.end for a in again.of(retention.DROPPED, "ohlcv"))
    hourly = stored(any_engine, "ohlcv_1h").set_index("bucket")
    assert hourly.loc[pd.Timestamp(floor_to(late, HOUR)), "candle_count"] == 1


# ------------------------------------------------------------------------------------------ compression


@pytest.mark.parametrize("any_backend_url", ["postgres", "timescaledb-apache"], indirect=True)
def test_compression_is_reported_unavailable_without_columnstore(any_engine):
    caps = caps_of(any_engine)
    result = compression.compress_chunks(any_engine, DEFAULT_POLICY)
    assert result.status == f"unavailable on this backend ({caps.backend.value})"
    assert result.chunks_converted == 0 and result.metadata()["status"] == result.status


@pytest.mark.timescaledb
@pytest.mark.parametrize("any_backend_url", ["timescaledb"], indirect=True)
def test_columnstore_converts_old_chunks_and_accepts_upserts(any_engine):
    assert caps_of(any_engine).compression
    old, recent = NOW - timedelta(days=30), NOW - timedelta(days=1)
    upsert_dataframe(any_engine, "ohlcv", candles("BTC/USDT", old, 600))
    upsert_dataframe(any_engine, "ohlcv", candles("BTC/USDT", recent, 60))
    refresh_aggregates(any_engine)
    result = compression.compress_chunks(any_engine, DEFAULT_POLICY, now=NOW)
    ohlcv = next(t for t in result.tables if t.table == "ohlcv")
    assert ohlcv.chunks_converted == 1
    assert ohlcv.bytes_before > ohlcv.bytes_after > 0
    chunks = pieces_of(any_engine, "ohlcv")
    assert [p.compressed for p in chunks.values()] == [
        p.end <= NOW - timedelta(days=7) for p in chunks.values()
    ]
    # An upsert of a corrected candle into the compressed chunk goes through the normal API.
    fix = candles("BTC/USDT", old + timedelta(minutes=5), 1, seed=5)
    fix["close"], fix["high"] = 777.0, 778.0
    assert upsert_dataframe(any_engine, "ohlcv", fix).updated == 1
    assert count(any_engine, "SELECT count(*) FROM ohlcv WHERE close = 777") == 1
    refresh_aggregates(any_engine)
    hourly, _ = expected_rollups(any_engine)
    assert_same(stored(any_engine, "ohlcv_1h"), hourly)
    again = compression.compress_chunks(any_engine, DEFAULT_POLICY, now=NOW)
    assert again.chunks_converted == 0  # already converted: nothing to redo
    info = {t.table_name: t for t in stats.collect_stats(any_engine).tables}
    assert info["ohlcv"].compression_ratio > 1 and info["ohlcv"].compressed_pieces == 1


# ------------------------------------------------------------------------------- partitions and stats


def test_partitions_are_created_ahead_and_default_is_drained(engine):
    # The upsert creates the partitions it writes into; rows written by anything else land in DEFAULT.
    far_past = datetime(2001, 5, 17, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO market_trades (exchange, symbol, trade_id, time, price, amount) "
                "SELECT 'testex', 'BTC/USDT', i::text, :t + i * interval '1 second', 100, 1 "
                "FROM generate_series(1, 3) AS i"
            ),
            {"t": far_past},
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT tableoid::regclass::text FROM market_trades")).scalar() == (
            "market_trades_default"
        )
    later = NOW + timedelta(days=10)
    result = partitions.manage_partitions(engine, now=later)
    assert result.created_for_default == {"market_trades": 1}
    assert result.moved_from_default == {"market_trades": 3}
    # 1-day partitions from the day before `later` to PARTITIONS_AHEAD days after it.
    assert result.created_ahead["market_trades"] == PARTITIONS_AHEAD + 2
    with engine.connect() as conn:
        assert conn.execute(
            sa.text("SELECT DISTINCT tableoid::regclass::text FROM market_trades")
        ).scalar() == ("market_trades_p20010517")
    ahead = pieces_of(engine, "market_trades")
    assert max(p.end for p in ahead.values()) > later + PARTITIONS_AHEAD * DAY
    assert partitions.manage_partitions(engine, now=later).metadata()["partitions_created"] == 0


def test_stats_report_sizes_time_range_and_aggregates(any_engine):
    seed_recent(any_engine)
    refresh_aggregates(any_engine)
    measured = stats.collect_stats(any_engine)
    info = {t.table_name: t for t in measured.tables}
    with any_engine.connect() as conn:
        low, high, rows = conn.execute(sa.text("SELECT min(time), max(time), count(*) FROM ohlcv")).one()
    assert (info["ohlcv"].oldest, info["ohlcv"].newest) == (low, high)
    assert info["ohlcv"].row_estimate == rows  # exact after ANALYZE on this small table
    assert info["ohlcv"].pieces >= 1 and info["ohlcv"].total_bytes > 0
    assert info["market_trades"].oldest is None
    kind = "continuous aggregate" if caps_of(any_engine).continuous_aggregates else "rollup"
    hourly, _ = expected_rollups(any_engine)
    assert info["ohlcv_1h"].kind == kind and info["ohlcv_1d"].kind == kind
    assert info["ohlcv_1h"].oldest == hourly["bucket"].min().to_pydatetime()
    assert info["ohlcv_1h"].newest == hourly["bucket"].max().to_pydatetime()
    assert "| ohlcv_1h |" in measured.markdown()
    numeric = measured.numeric()
    assert numeric["ohlcv/rows"] == rows and numeric["ohlcv_1h/bytes"] > 0


def test_db_info_shows_time_range_and_aggregates(db_url, monkeypatch):
    from market_warehouse.pipelines.cli import cli
    from market_warehouse.resources.database import create_engine

    engine = create_engine(db_url)
    try:
        seed_recent(engine)
        refresh_aggregates(engine)
    finally:
        engine.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    out = CliRunner().invoke(cli, ["db", "info"], catch_exceptions=False).output
    line = next(row for row in out.splitlines() if row.startswith("ohlcv "))
    assert (NOW - timedelta(days=3)).strftime("%Y-%m-%d") in line
    assert any(row.startswith("ohlcv_1h ") and "rollup" in row for row in out.splitlines())


# --------------------------------------------------------------------------------------------- policy


def test_policy_parses_the_maintenance_section_and_names_bad_keys():
    policy = parse_policy(
        {
            "compression": {"after": "3d", "tables": ["ohlcv"]},
            "retention": {"ohlcv": {"1m": "30d", "5m": "180d"}, "market_trades": "forever", "features": "2w"},
        },
        "u.yaml",
    )
    assert policy.compress_after == timedelta(days=3) and policy.compress_tables == ("ohlcv",)
    assert policy.retention_for("ohlcv", "1m") == timedelta(days=30)
    assert policy.retention_for("ohlcv", "1h") is None
    assert policy.retention_for("market_trades") is None  # forever overrides the default
    assert policy.retention_for("orderbook_snapshots") is None  # unlisted: kept forever (no default)
    assert policy.retention_for("features") == timedelta(weeks=2)
    assert parse_policy(None) == DEFAULT_POLICY
    for bad, message in [
        (
            {"retention": {"ohlcv_1h": "30d"}},
            "maintenance.retention.ohlcv_1h: the aggregates are kept forever",
        ),
        ({"retention": {"nope": "30d"}}, "maintenance.retention.nope: 'nope' is not a time-series table"),
        ({"retention": {"market_trades": {"1m": "3d"}}}, "per-interval retention exists only for"),
        ({"retention": {"ohlcv": {"1m": "soon"}}}, "maintenance.retention.ohlcv.1m: invalid interval 'soon'"),
        ({"compression": {"tables": ["sources"]}}, "no columnstore settings for sources"),
        ({"vacuum": True}, "unknown key(s) maintenance.vacuum"),
    ]:
        with pytest.raises(ConfigurationError) as err:
            parse_policy(bad, "u.yaml")
        assert message in str(err.value) and str(err.value).startswith("u.yaml: ")


def test_shipped_universe_declares_the_default_policy():
    from market_warehouse.resources.maintenance.policy import load_policy

    assert load_policy() == DEFAULT_POLICY
    assert DEFAULT_POLICY.retention == {}  # keep everything unless configured (issue 11)


# --------------------------------------------------------------------------------------------- dagster


def test_nightly_maintenance_runs_every_step_in_order(db_url, safe_tmp):
    import dagster as dg
    import yaml

    from market_warehouse.pipelines.defs.maintenance import POLICY_OPS
    from market_warehouse.pipelines.defs.maintenance import defs as maintenance_defs
    from market_warehouse.resources.dagster_resources import WarehouseResource
    from market_warehouse.resources.database import create_engine
    from market_warehouse.resources.universe_file import universe_path

    universe = yaml.safe_load(universe_path(None).read_text())
    universe["maintenance"] = {"retention": {"ohlcv": {"1m": "90d"}, "market_trades": "30d"}}
    (safe_tmp / "universe.yaml").write_text(yaml.safe_dump(universe))
    config = {"config": {"universe": str(safe_tmp / "universe.yaml")}}
    engine = create_engine(db_url)
    try:
        seed_aged(engine)
        dirty = dirty_count(engine)
        warehouse = WarehouseResource(database_url=db_url.render_as_string(hide_password=False))
        defs = dg.Definitions.merge(maintenance_defs, dg.Definitions(resources={"warehouse": warehouse}))
        result = defs.get_job_def("nightly_maintenance").execute_in_process(
            run_config={"ops": dict.fromkeys(POLICY_OPS, config)}
        )
        assert result.success
        started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
        assert started == [
            "plan_maintenance",
            "create_partitions",
            "refresh_aggregates",
            "compress_chunks",
            "apply_retention",
            "collect_stats",
        ]
        meta = {
            e.step_key: e.event_specific_data.metadata
            for e in result.all_events
            if e.event_type_value == "STEP_OUTPUT"
        }
        assert meta["refresh_aggregates"]["dirty_hours"].value == dirty > 0
        assert meta["compress_chunks"]["status"].value == "unavailable on this backend (postgres)"
        assert meta["apply_retention"]["pieces_dropped"].value >= 2
        assert meta["apply_retention"]["ohlcv[1m]"].value == "90d"
        planned = (
            meta["plan_maintenance"]["pieces_to_drop"].value
            + meta["plan_maintenance"]["pieces_to_trim"].value
        )
        assert planned == len(meta["apply_retention"]["removed"].value.records) >= 3
        # warehouse_stats is one metadata table (issue 12): a row per table, the aggregates among them
        assert "ohlcv_1h" in {r.data["table"] for r in meta["collect_stats"]["tables"].value.records}
        materialized = {
            e.asset_key.to_user_string() for e in result.asset_materializations_for_node("refresh_aggregates")
        }
        assert materialized == {"ohlcv_1h", "ohlcv_1d"}
        assert count(engine, "SELECT count(*) FROM ohlcv_1h") == 6

        # The hourly job is an asset job over the two aggregates; a run with nothing dirty writes nothing.
        hourly = defs.resolve_job_def("aggregate_refresh").execute_in_process()
        assert hourly.success
        keys = {
            m.asset_key.to_user_string() for m in hourly.asset_materializations_for_node("ohlcv_aggregates")
        }
        assert keys == {"ohlcv_1h", "ohlcv_1d"}
    finally:
        engine.dispose()


def test_schedules_are_utc_and_jobs_use_the_maintenance_pool():
    from market_warehouse.pipelines.defs.maintenance import defs as maintenance_defs
    from market_warehouse.pipelines.partitions import MAINTENANCE_POOL

    schedules = {s.name: s for s in maintenance_defs.schedules}
    assert schedules["nightly_maintenance_schedule"].cron_schedule == "30 2 * * *"
    assert schedules["aggregate_refresh_schedule"].cron_schedule == "5 * * * *"
    assert {s.execution_timezone for s in schedules.values()} == {"UTC"}
    from market_warehouse.pipelines.defs.maintenance import nightly_maintenance

    assert {node.definition.pool for node in nightly_maintenance.graph.nodes} == {MAINTENANCE_POOL}
