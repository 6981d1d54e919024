"""Issue 16, items 1-2: nothing is lost — retention exports to a Parquet cold tier before it drops, and reads
span both tiers.

On every backend (embedded PostgreSQL; TimescaleDB full / Apache-only when TIMESCALEDB_URL /
TIMESCALEDB_APACHE_URL are set): after retention with a cold tier, the database rows plus the Parquet rows
are exactly the rows before retention, and `get_ohlcv` over the whole span returns the same candles; an
export that cannot be written drops nothing and records the error; `cold restore` brings the rows back and
writes nothing the second time; exporting the same rows again writes no new file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL

from market_warehouse.resources import clock
from market_warehouse.resources.database import create_engine
from market_warehouse.resources.maintenance import retention
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to
from market_warehouse.resources.maintenance.cold import read_cold, restore
from market_warehouse.resources.maintenance.plan import plan_maintenance
from market_warehouse.resources.maintenance.policy import parse_policy
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.universe_file import universe_path
from market_warehouse.resources.warehouse import upsert_dataframe
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.cold import COLD, DATABASE
from market_warehouse.resources.warehouse.ops.common import MAX_TIME, MIN_TIME
from market_warehouse.resources.warehouse.ops.market import (
    get_market_trades,
    get_market_trades_frame,
    get_ohlcv,
    get_ohlcv_frame,
)
from tests.maintenance_data import candles, count, trades

NOW = floor_to(clock.now(), HOUR)
OLD = floor_to(NOW - timedelta(days=60), DAY)
RETENTION = {"ohlcv": {"1m": "30d"}, "market_trades": "30d"}
KEYS = {
    "ohlcv": ["exchange", "symbol", "interval", "time"],
    "market_trades": ["exchange", "symbol", "trade_id", "time"],
}
IGNORED = ["ingested_at"]  # set by the database at each write: a restore writes a new one


def seed(engine: sa.Engine) -> None:
    """Old 1m candles of two pairs and old 1h candles (1h is kept: the 1m rows of that piece are deleted,
    not dropped), recent candles, and old and recent trades (the old trades' piece is dropped whole)."""
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", OLD, 3 * 1440))
    upsert_dataframe(engine, "ohlcv", candles("ETH/USDT", OLD + DAY, 1440, seed=2))
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", OLD, 48, interval="1h", seed=3))
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", NOW - 2 * DAY, 600, seed=4))
    upsert_dataframe(engine, "market_trades", trades(OLD + timedelta(hours=5), 300))
    upsert_dataframe(engine, "market_trades", trades(NOW - DAY, 40))


def table_rows(engine: sa.Engine, table: str) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(f"SELECT * FROM {table}"), conn)
    return normalized(frame, table)


def normalized(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Rows in key order, comparable across the database and Parquet (no write-time column, UTC, objects)."""
    frame = frame.drop(columns=[c for c in IGNORED if c in frame.columns])
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.as_unit("us")
    frame = frame.sort_values(KEYS[table]).reset_index(drop=True)
    return frame[sorted(frame.columns)].astype(object).where(frame.notna(), None)


def cold_rows(engine: sa.Engine, table: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return normalized(read_cold(conn, table, MIN_TIME, MAX_TIME).to_pandas(), table)


def union(engine: sa.Engine, table: str) -> pd.DataFrame:
    both = pd.concat([table_rows(engine, table), cold_rows(engine, table)], ignore_index=True)
    return normalized(both, table)


def policy_with(cold: object):
    return parse_policy({"retention": RETENTION, "cold": cold})


def events(engine: sa.Engine, event_type: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT severity, message, details FROM system_events WHERE event_type = :t ORDER BY id"),
            {"t": event_type},
        ).mappings()
        return [dict(r) for r in rows]


def manifest(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT table_name, root, path, rows, sha256 FROM cold_pieces ORDER BY path")
            )
        ]


def test_retention_with_a_cold_tier_loses_nothing_and_reads_span_both_tiers(any_backend_url, safe_tmp):
    engine = create_engine(any_backend_url)
    cold = safe_tmp / "cold"
    try:
        seed(engine)
        before = {t: table_rows(engine, t) for t in KEYS}
        with engine.connect() as conn:
            series_before = get_ohlcv(conn, "testex", "BTC/USDT", "1m", cold=False)
            trades_before = get_market_trades(conn, "testex", "BTC/USDT", cold=False)
        assert len(trades_before) == 340
        assert len(series_before) == 3 * 1440 + 600
        policy = policy_with({"ohlcv": str(cold), "market_trades": str(cold)})

        plan = plan_maintenance(engine, policy, now=NOW)
        labels = {(d.table, d.label) for d in plan.drops}
        assert labels == {("ohlcv", "export then delete rows"), ("market_trades", "export then drop")}
        assert "export then drop" in plan.text() and "export then delete rows" in plan.text()
        assert f"; cold[ohlcv] {cold}" in plan.text().splitlines()[1]
        assert plan.as_dict()["apply_retention"][0]["export_to"] == str(cold)

        result = retention.apply_retention(engine, policy, now=NOW, run_id="run-1")
        assert not result.of(retention.EXPORT_FAILED)
        removed = sum(a.rows for a in result.removed)
        assert removed == 3 * 1440 + 1440 + 300
        assert result.metadata()["rows_exported"] == removed
        # The old 1m candles and trades left the database ...
        assert (
            count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m' AND time < :t", t=NOW - 30 * DAY)
            == 0
        )
        assert count(engine, "SELECT count(*) FROM market_trades WHERE time < :t", t=NOW - 30 * DAY) == 0
        # ... and the database plus the Parquet files hold exactly the rows there were.
        for table in KEYS:
            pd.testing.assert_frame_equal(union(engine, table), before[table])

        # Each drop/delete is recorded with its export; the manifest lists every file, hashes included.
        recorded = events(engine, "retention_delete") + events(engine, "retention_drop")
        assert len(recorded) == len(result.removed)
        assert all(e["details"]["export_to"] == str(cold) for e in recorded)
        assert sum(e["details"]["exported"]["rows"] for e in recorded) == removed
        files = manifest(engine)
        assert sum(r[3] for r in files) == removed
        assert {r[1] for r in files} == {str(cold.resolve())}
        for _, root, path, rows, _ in files:
            assert Path(root, path).exists() and pq.ParquetFile(Path(root, path)).metadata.num_rows == rows
        assert not list(cold.rglob("*.tmp"))  # temporary names were renamed
        assert any("symbol=BTC%2FUSDT" in r[2] and "/interval=1m/price=trade/month=" in r[2] for r in files)
        # A hive dataset any reader can open: time sorted within each file, partition columns restored.
        dataset = ds.dataset(cold / "table=ohlcv", format="parquet", partitioning="hive")
        assert dataset.count_rows() == 3 * 1440 + 1440
        for fragment in dataset.get_fragments():
            times = fragment.to_table(columns=["time"]).column("time").to_pylist()
            assert times == sorted(times)
        assert (
            pq.ParquetFile(next(cold.rglob("*.parquet"))).metadata.row_group(0).column(0).compression
            == "ZSTD"
        )

        # One continuous series over the whole span, the same candles as before retention.
        with engine.connect() as conn:
            assert get_ohlcv(conn, "testex", "BTC/USDT", "1m") == series_before
            frame = get_ohlcv_frame(conn, "testex", ["BTC/USDT", "ETH/USDT"], "1m")
            assert len(get_ohlcv(conn, "testex", "BTC/USDT", "1m", limit=10)) == 10
            assert get_ohlcv(conn, "testex", "BTC/USDT", "1m", limit=10) == series_before[:10]
            hot_only = get_ohlcv(conn, "testex", "BTC/USDT", "1m", cold=False)
            assert get_market_trades(conn, "testex", "BTC/USDT") == trades_before
            assert len(get_market_trades(conn, "testex", "BTC/USDT", cold=False)) == 40
            trades_frame = get_market_trades_frame(conn, "testex", "BTC/USDT", limit=350)
        assert [(t["tier"], t["rows"]) for t in trades_frame.attrs["tiers"]] == [(COLD, 300), (DATABASE, 40)]
        assert len(hot_only) == 600
        assert len(frame) == 3 * 1440 + 600 + 1440
        tiers = frame.attrs["tiers"]
        btc = [(t["tier"], t["rows"]) for t in tiers if t["symbol"] == "BTC/USDT"]
        assert btc == [(COLD, 3 * 1440), (DATABASE, 600)]
        # The storage API reads through ADBC (ArrowReader): the same series.
        with Warehouse(any_backend_url) as wh:
            assert wh.get_ohlcv("testex", "BTC/USDT", "1m") == series_before
            api_frame = wh.get_ohlcv_frame("testex", "BTC/USDT", "1m", start=OLD + DAY, end=NOW)
        assert len(api_frame) == 2 * 1440 + 600
        assert [t["tier"] for t in api_frame.attrs["tiers"]] == [COLD, DATABASE]
    finally:
        engine.dispose()


def test_a_failed_export_drops_nothing_and_records_the_error(any_backend_url, safe_tmp):
    engine = create_engine(any_backend_url)
    blocker = safe_tmp / "not-a-folder"
    blocker.write_text("a file where the cold folder should be: even root cannot create a folder inside")
    try:
        seed(engine)
        before = {t: table_rows(engine, t) for t in KEYS}
        result = retention.apply_retention(engine, policy_with(str(blocker / "cold")), now=NOW)
        failed = result.of(retention.EXPORT_FAILED)
        assert {a.table for a in failed} == {"ohlcv", "market_trades"}
        assert not result.removed
        assert result.metadata()["export_failures"] == len(failed)
        for table in KEYS:
            pd.testing.assert_frame_equal(table_rows(engine, table), before[table])
        assert manifest(engine) == []
        errors = events(engine, "retention_export_failed")
        assert len(errors) == len(failed)
        assert {e["severity"] for e in errors} == {"error"}
        assert all(e["details"]["error"] for e in errors)
        assert events(engine, "retention_drop") == events(engine, "retention_delete") == []
    finally:
        engine.dispose()


def _cli(*args: str, url: URL) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-m", "market_warehouse.pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cold_restore_brings_pieces_back_once_and_a_second_export_writes_nothing(any_backend_url, safe_tmp):
    engine = create_engine(any_backend_url)
    cold = safe_tmp / "cold"
    try:
        seed(engine)
        before = {t: table_rows(engine, t) for t in KEYS}
        policy = policy_with(str(cold))  # one location for every table
        retention.apply_retention(engine, policy, now=NOW)
        files = manifest(engine)
        assert files
        stamps = {p: p.stat().st_mtime_ns for p in cold.rglob("*.parquet")}

        first = restore(engine, "ohlcv", OLD - DAY, NOW)
        assert (first.inserted, first.updated) == (3 * 1440 + 1440, 0)
        second = restore(engine, "ohlcv", OLD - DAY, NOW)
        assert (second.inserted, second.updated, second.unchanged) == (0, 0, 3 * 1440 + 1440)
        pd.testing.assert_frame_equal(table_rows(engine, "ohlcv"), before["ohlcv"])

        # The CLI: trades back, then nothing the second time.
        args = (
            "cold",
            "restore",
            "--table",
            "market_trades",
            "--from",
            f"{OLD:%Y-%m-%d}",
            "--to",
            f"{NOW:%Y-%m-%d}",
        )
        once = _cli(*args, url=any_backend_url)
        assert once.returncode == 0, once.stderr
        assert "300 inserted, 0 updated" in once.stdout
        twice = _cli(*args, url=any_backend_url)
        assert twice.returncode == 0, twice.stderr
        assert "0 inserted, 0 updated, 300 unchanged" in twice.stdout
        assert "password" not in once.stdout.lower()
        pd.testing.assert_frame_equal(table_rows(engine, "market_trades"), before["market_trades"])

        # Both tiers hold the restored rows: a read shows them once, from the database.
        with engine.connect() as conn:
            frame = get_ohlcv_frame(conn, "testex", "BTC/USDT", "1m")
        assert len(frame) == 3 * 1440 + 600
        assert {t["tier"] for t in frame.attrs["tiers"]} == {DATABASE}

        # Retention again: the same rows export to the same files, which are not rewritten.
        result = retention.apply_retention(engine, policy, now=NOW)
        assert result.removed and all(a.exported["files_written"] == 0 for a in result.removed)
        assert manifest(engine) == files
        assert {p: p.stat().st_mtime_ns for p in cold.rglob("*.parquet")} == stamps
        for table in KEYS:
            pd.testing.assert_frame_equal(
                union(engine, table).drop_duplicates(ignore_index=True), before[table]
            )
    finally:
        engine.dispose()


def test_cold_configuration_is_validated():
    assert policy_with("s3://bucket/cold").cold_for("ohlcv") == "s3://bucket/cold"
    assert policy_with({"ohlcv": "/srv/cold"}).cold_for("market_trades") is None
    assert policy_with("s3://user:secret@host/cold").describe()["cold"] == "s3://user:***@host/cold"
    with pytest.raises(ConfigurationError, match="not a time-series table"):
        policy_with({"nope": "/srv/cold"})
    with pytest.raises(ConfigurationError, match="maintenance.cold"):
        policy_with(["/srv/cold"])


def run_nightly(url: URL, universe: Path) -> dg.ExecuteInProcessResult:
    """The real `nightly_maintenance` job in process, with the policy of `universe`; failures returned."""
    from market_warehouse.pipelines.defs.maintenance import POLICY_OPS
    from market_warehouse.pipelines.defs.maintenance import defs as maintenance_defs
    from market_warehouse.resources.dagster_resources import WarehouseResource

    warehouse = WarehouseResource(database_url=url.render_as_string(hide_password=False))
    defs = dg.Definitions.merge(maintenance_defs, dg.Definitions(resources={"warehouse": warehouse}))
    config = {"ops": {op: {"config": {"universe": str(universe)}} for op in POLICY_OPS}}
    return defs.get_job_def("nightly_maintenance").execute_in_process(run_config=config, raise_on_error=False)


def test_the_nightly_job_exports_then_drops_and_fails_the_step_when_the_export_fails(engine, safe_tmp):
    """The Dagster job end to end (PostgreSQL): the plan says "export then drop", retention exports, and a
    broken cold location fails `apply_retention` with nothing dropped."""
    seed(engine)
    url = engine.url
    broken = safe_tmp / "blocker"
    broken.write_text("not a folder")
    for location, ok in ((str(broken / "cold"), False), (str(safe_tmp / "cold"), True)):
        raw = yaml.safe_load(universe_path(None).read_text())
        raw["maintenance"] = {"retention": RETENTION, "cold": location}
        universe = safe_tmp / "universe.yaml"
        universe.write_text(yaml.safe_dump(raw))
        before = {t: table_rows(engine, t) for t in KEYS}
        result = run_nightly(url, universe)
        plan = next(
            e.event_specific_data.metadata
            for e in result.all_events
            if e.event_type_value == "STEP_OUTPUT" and e.step_key == "plan_maintenance"
        )
        assert "export then drop" in plan["plan"].value
        if not ok:
            assert not result.success
            failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
            assert failure.step_key == "apply_retention"
            assert "export to the cold tier failed" in failure.event_specific_data.error.message
            for table in KEYS:
                pd.testing.assert_frame_equal(table_rows(engine, table), before[table])
        else:
            assert result.success, [
                e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"
            ]
            for table in KEYS:
                pd.testing.assert_frame_equal(union(engine, table), before[table])
            assert manifest(engine)


def test_an_fsspec_url_works_as_the_cold_location(engine):
    """A cold tier that is not a local folder (fsspec's in-memory filesystem standing for s3:// or gs://)."""
    import fsspec

    location = f"memory://mw-cold-{os.getpid()}-{id(engine)}"
    seed(engine)
    before = {t: table_rows(engine, t) for t in KEYS}
    with engine.connect() as conn:
        series_before = get_ohlcv(conn, "testex", "BTC/USDT", "1m", cold=False)
    try:
        result = retention.apply_retention(engine, policy_with(location), now=NOW)
        assert result.removed and not result.of(retention.EXPORT_FAILED)
        assert {r[1] for r in manifest(engine)} == {location}
        for table in KEYS:
            pd.testing.assert_frame_equal(union(engine, table), before[table])
        with engine.connect() as conn:
            assert get_ohlcv(conn, "testex", "BTC/USDT", "1m") == series_before
    finally:
        fs = fsspec.filesystem("memory")
        fs.rm(location.removeprefix("memory://"), recursive=True)
