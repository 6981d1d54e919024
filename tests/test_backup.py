"""Backup and restore, proven by a round trip on every backend (issue 16, items 3-4).

A database is filled through the project's own paths (the upsert API, then the nightly job's steps:
partitions, aggregate refresh, columnstore conversion), backed up with `pg_dump -Fd -j`, restored into a
database that did not exist, and compared table by table (row counts and ordered checksums), plus the
structure each backend must keep: partitions with their DEFAULT on PostgreSQL, hypertables, continuous
aggregates and compressed chunks on TimescaleDB. The Dagster instance database goes along, with a real run
in Dagster's own schema. TimescaleDB variants skip without TIMESCALEDB_URL / TIMESCALEDB_APACHE_URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from maintenance_data import candles, trades
from sqlalchemy.engine import URL

from market_warehouse.resources import clock
from market_warehouse.resources.backend import Backend, detect
from market_warehouse.resources.backup import MANIFEST, RestoreRefused, backup, read_manifest, restore
from market_warehouse.resources.backup.clients import client_env, find_client
from market_warehouse.resources.backup.snapshot import compare, snapshot
from market_warehouse.resources.database import create_engine, drop_database, ensure_database
from market_warehouse.resources.maintenance import aggregates, compression, partitions
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to
from market_warehouse.resources.maintenance.policy import MaintenancePolicy
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.warehouse import upsert_dataframe

POLICY = MaintenancePolicy(compress_after=timedelta(days=7))
DEFAULT_ROWS = """
INSERT INTO ohlcv (exchange, symbol, interval, time, open, high, low, close, volume)
SELECT 'manual', symbol, interval, time + interval '80 years', open, high, low, close, volume
FROM ohlcv WHERE symbol = 'SOL/USDT' ORDER BY time LIMIT 3
"""


def fill_warehouse(engine: sa.Engine) -> None:
    """Recent and 20-day-old candles and trades through the upsert, then the nightly job's steps; on
    PostgreSQL some rows are loaded after the partitions step, so the DEFAULT partition holds data too."""
    today = floor_to(clock.now(), DAY)
    old = today - timedelta(days=20) + timedelta(hours=3)
    recent = today - timedelta(days=2) + timedelta(hours=5)
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", old, 180, seed=1))
    upsert_dataframe(engine, "ohlcv", candles("ETH/USDT", recent, 300, seed=2))
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", recent, 24, interval="1h", seed=3))
    upsert_dataframe(engine, "market_trades", trades(old, 50))
    partitions.manage_partitions(engine)
    aggregates.refresh_aggregates(engine)
    compression.compress_chunks(engine, POLICY)
    upsert_dataframe(engine, "ohlcv", candles("SOL/USDT", today - timedelta(days=400), 30, seed=4))
    # Rows written outside the loader (a manual fix, a tool): on PostgreSQL they land in DEFAULT.
    with engine.begin() as conn:
        conn.execute(sa.text(DEFAULT_ROWS))


def fill_dagster(url: URL) -> str:
    """Dagster's real schema in `url` with one run in it (what a deployment's instance database holds)."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_postgres import PostgresRunStorage

    storage = PostgresRunStorage(url.render_as_string(hide_password=False))
    run_id = str(uuid.uuid4())
    storage.add_run(DagsterRun(job_name="nightly_maintenance", run_id=run_id))
    storage.dispose()
    return run_id


def state_of(url: URL):
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            caps = detect(conn)
            return caps, snapshot(conn)
    finally:
        engine.dispose()


def scalar(url: URL, query: str):
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def sibling_urls(any_backend_url):
    """Names for the Dagster database and the two restore targets on the same server (dropped after)."""
    base = any_backend_url.database
    urls = {
        k: any_backend_url.set(database=f"{base}_{k}") for k in ("dagster", "restored", "restored_dagster")
    }
    yield urls
    for url in urls.values():
        drop_database(url)


def test_round_trip_restores_every_table_and_the_structure(any_backend_url, sibling_urls, safe_tmp):
    engine = create_engine(any_backend_url, poolclass=sa.NullPool)
    try:
        fill_warehouse(engine)
    finally:
        engine.dispose()
    ensure_database(sibling_urls["dagster"])
    run_id = fill_dagster(sibling_urls["dagster"])
    caps, source = state_of(any_backend_url)

    folder = safe_tmp / "backup"
    done = backup({"warehouse": any_backend_url, "dagster": sibling_urls["dagster"]}, folder, jobs=2)
    manifest = read_manifest(folder)
    entry = manifest["databases"]["warehouse"]
    assert entry["schema_revision"] == source.schema_revision is not None
    assert entry["timescaledb_version"] == caps.timescaledb_version
    assert entry["timescaledb_license"] == caps.timescaledb_license
    assert entry["server_version"] == caps.server_version
    assert clock.parse_instant(manifest["created_at"]) <= clock.now()
    assert {(n, t.rows, t.checksum) for n, t in done[0].state.tables.items()} == {
        (n, t.rows, t.checksum) for n, t in source.tables.items()
    }
    assert entry["tables"]["public.ohlcv"]["rows"] == 180 + 300 + 24 + 30 + 3
    assert entry["tables"]["public.market_trades"]["rows"] == 50
    assert manifest["databases"]["dagster"]["tables"]["public.runs"]["rows"] == 1
    assert (folder / "warehouse" / "toc.dat").is_file() and (folder / "dagster" / "toc.dat").is_file()

    targets = {"warehouse": sibling_urls["restored"], "dagster": sibling_urls["restored_dagster"]}
    results = restore(folder, targets, jobs=2)
    assert [(r.role, r.problems) for r in results] == [("warehouse", []), ("dagster", [])]

    # Independently of the manifest: the restored database against the source, read afresh.
    restored_caps, restored = state_of(sibling_urls["restored"])
    assert compare(source, restored) == []
    assert restored_caps.backend is caps.backend
    assert restored.tables.keys() == source.tables.keys()
    assert (
        scalar(sibling_urls["restored_dagster"], f"SELECT count(*) FROM runs WHERE run_id = '{run_id}'") == 1
    )
    structure = restored.structure
    if caps.backend is Backend.POSTGRES:
        ohlcv_parts = [p for p in structure["partitions"] if p[0] == "public.ohlcv"]
        assert any(bound == "DEFAULT" for _, _, bound in ohlcv_parts) and len(ohlcv_parts) > 2
        assert scalar(sibling_urls["restored"], "SELECT count(*) FROM ohlcv_default") == 3
    else:
        hypertables = {row[0]: row for row in structure["hypertables"]}
        assert {"public.ohlcv", "public.market_trades"} <= hypertables.keys()
        assert hypertables["public.ohlcv"][4] >= 2  # chunks
    if caps.backend is not Backend.TIMESCALEDB:  # rollup tables stand in for continuous aggregates
        assert (
            restored.tables["mw_aggregates.ohlcv_1h"].rows > 0
            and restored.tables["mw_aggregates.ohlcv_1d"].rows > 0
        )
    else:
        assert hypertables["public.ohlcv"][5] >= 1  # compressed chunks, still compressed
        assert {"public.ohlcv_1h", "public.ohlcv_1d"} <= {
            row[0] for row in structure["continuous_aggregates"]
        }
        assert restored.tables["public.ohlcv_1h"].rows > 0
        assert any(row[0] == "ohlcv" and "symbol" in row[1] for row in structure["compression_settings"])
        # The restored database works: an upsert into a compressed chunk and a refresh still succeed.
        engine = create_engine(sibling_urls["restored"], poolclass=sa.NullPool)
        try:
            upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", floor_to(clock.now(), HOUR), 5, seed=9))
            aggregates.refresh_aggregates(engine)
        finally:
            engine.dispose()

    # A changed value with the same row count is caught by the checksum.
    engine = create_engine(sibling_urls["restored"], poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE market_trades SET price = price + 1 WHERE trade_id LIKE '%-7'"))
    finally:
        engine.dispose()
    _, tampered = state_of(sibling_urls["restored"])
    assert any(p.startswith("public.market_trades: same row count") for p in compare(source, tampered))

    # A non-empty target is refused before anything is written.
    with pytest.raises(RestoreRefused, match="not empty"):
        restore(folder, {"warehouse": sibling_urls["restored"]})
    assert scalar(sibling_urls["restored"], "SELECT count(*) FROM market_trades") == 50


def test_client_must_match_the_server_major(monkeypatch, tmp_path):
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MW_PG_BIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"PostgreSQL 7 and needs pg_dump 7; found: .*pg_dump 11"):
        find_client("pg_dump", 7)
    assert find_client("pg_dump", 11).path == fake


def test_password_goes_to_a_private_passfile_never_the_command_line():
    url = URL.create(
        "postgresql+psycopg2", "alice", "s3:cr\\et", "db.example", 5433, "wh", {"sslmode": "require"}
    )
    with client_env(url) as env:
        passfile = Path(env["PGPASSFILE"])
        assert passfile.read_text() == "*:*:*:*:s3\\:cr\\\\et\n"
        assert passfile.stat().st_mode & 0o077 == 0
        assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"], env["PGSSLMODE"]) == (
            "db.example",
            "5433",
            "alice",
            "wh",
            "require",
        )
        assert "s3:cr" not in json.dumps({k: v for k, v in env.items() if k != "PGPASSFILE"})
    assert not passfile.exists()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "market-warehouse"
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)


def test_cli_backup_and_restore_in_a_subprocess(db_url, safe_tmp):
    engine = create_engine(db_url, poolclass=sa.NullPool)
    try:
        fill_warehouse(engine)
    finally:
        engine.dispose()
    ensure_database(db_url.set(database=f"{db_url.database}_dg"))
    fill_dagster(db_url.set(database=f"{db_url.database}_dg"))
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    env["MW_DAGSTER_PG_URL"] = db_url.set(database=f"{db_url.database}_dg").render_as_string(
        hide_password=False
    )
    folder = safe_tmp / "bk"
    target = db_url.set(database=f"{db_url.database}_cli")
    extra = [
        db_url.set(database=f"{db_url.database}_{s}")
        for s in ("dg", "cli", "cli_dagster", "bad", "bad_dagster")
    ]
    try:
        made = _cli("backup", str(folder), "--jobs", "2", env=env)
        assert made.returncode == 0, made.stderr
        assert "warehouse" in made.stdout and "backup written" in made.stdout
        target_arg = target.render_as_string(hide_password=False)
        first = _cli("restore", str(folder), "--target-url", target_arg, env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.count(": verified") == 2, first.stdout
        again = _cli("restore", str(folder), "--target-url", target_arg, env=env)
        assert again.returncode == 2 and "not empty" in again.stderr
        forced = _cli("restore", str(folder), "--target-url", target_arg, "--force", env=env)
        assert forced.returncode == 0 and forced.stdout.count(": verified") == 2, (
            forced.stdout + forced.stderr
        )

        # A manifest that disagrees with the dump: exit 1, the table named.
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["databases"]["warehouse"]["tables"]["public.market_trades"]["rows"] += 1
        (folder / MANIFEST).write_text(json.dumps(manifest))
        bad = db_url.set(database=f"{db_url.database}_bad").render_as_string(hide_password=False)
        differs = _cli("restore", str(folder), "--target-url", bad, env=env)
        assert differs.returncode == 1, differs.stdout + differs.stderr
        assert "public.market_trades: 50 rows, backup has 51" in differs.stdout
    finally:
        for url in extra:
            drop_database(url)


@pytest.mark.parametrize("any_backend_url", ["timescaledb"], indirect=True)
@pytest.mark.parametrize("timescaledb_empty_url", ["timescaledb-apache"], indirect=True)
def test_timescaledb_backup_is_refused_where_it_cannot_be_restored(
    any_backend_url, timescaledb_empty_url, safe_tmp
):
    """A Timescale-licensed backup on an Apache-only server, or at a version the server does not offer:
    refused with both sides named, before pg_restore runs."""
    folder = safe_tmp / "backup"
    backup({"warehouse": any_backend_url}, folder, jobs=1)
    full = any_backend_url.set(database=f"{any_backend_url.database}_old")
    try:
        with pytest.raises(RestoreRefused, match="Apache-only build"):
            restore(folder, {"warehouse": timescaledb_empty_url})
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["databases"]["warehouse"]["timescaledb_version"] = "2.13.0-never"
        (folder / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(RestoreRefused, match=r"needs TimescaleDB 2\.13\.0-never .* offers: .*2\.29"):
            restore(folder, {"warehouse": full})
        assert scalar(full, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
    finally:
        drop_database(full)
