"""Configuration: URLs, secrets, backend detection rules and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from market_warehouse.resources.backend import Backend, capabilities_from
from market_warehouse.resources.database import normalize_url, redact
from market_warehouse.resources.schema import head_revision
from market_warehouse.resources.settings import ConfigurationError

SECRET = "s3cr3t-pa55"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "market_warehouse.pipelines.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bare_postgresql_url_is_pinned_to_psycopg2():
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg2"
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg2"
    with pytest.raises(ConfigurationError, match="must point to PostgreSQL"):
        normalize_url("mysql://u:p@h/db")


def test_redact_hides_the_password():
    shown = redact(f"postgresql://trader:{SECRET}@db.example:5432/wh")
    assert SECRET not in shown and "***" in shown and "trader" in shown


@pytest.mark.parametrize(
    ("license_", "backend"), [("timescale", Backend.TIMESCALEDB), ("apache", Backend.TIMESCALEDB_APACHE)]
)
def test_timescaledb_license_decides_the_backend(license_, backend):
    caps = capabilities_from(
        {"server_version": "17.2", "timescaledb_version": "2.22.1", "timescaledb_license": license_}
    )
    assert caps.backend is backend
    assert caps.hypertables
    assert caps.compression is (backend is Backend.TIMESCALEDB)


def test_plain_postgres_and_forced_off():
    row = {"server_version": "18.1", "timescaledb_version": None, "timescaledb_license": None}
    assert capabilities_from(row).backend is Backend.POSTGRES
    row = {"server_version": "18.1", "timescaledb_version": "2.22.1", "timescaledb_license": "timescale"}
    assert capabilities_from(row, mode="off").backend is Backend.POSTGRES


def test_old_timescaledb_is_refused_with_one_clear_line():
    row = {"server_version": "15.4", "timescaledb_version": "2.12.2", "timescaledb_license": "timescale"}
    with pytest.raises(ConfigurationError, match=r"TimescaleDB 2\.12\.2 is too old: .* needs 2\.13 or newer"):
        capabilities_from(row)


def test_unreachable_database_url_fails_with_one_line_and_no_password():
    url = f"postgresql://trader:{SECRET}@127.0.0.1:1/warehouse"
    result = _cli("db", "info", env={"DATABASE_URL": url})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "error: cannot connect to postgresql+psycopg2://trader:***@127.0.0.1:1/warehouse"
    )
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_cli_migrate_and_db_info_on_a_given_database(empty_url):
    env = {"DATABASE_URL": empty_url.render_as_string(hide_password=False)}
    first = _cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"empty -> {head_revision()}" in first.stdout
    second = _cli("migrate", env=env)
    assert second.returncode == 0 and "already at" in second.stdout
    info = _cli("db", "info", "--json", env=env)
    assert info.returncode == 0, info.stderr
    payload = json.loads(info.stdout)
    assert payload["capabilities"]["backend"] == "postgres"
    assert payload["capabilities"]["compression"] is False
    kinds = {t["table_name"]: t["kind"] for t in payload["tables"]}
    assert kinds["ohlcv"] == "partitioned" and kinds["quarantine"] == "regular"
    text = _cli("db", "info", env=env)
    assert "backend:      postgres" in text.stdout and "ohlcv" in text.stdout


def test_named_databases_are_siblings_of_the_warehouse_never_the_warehouse_itself(empty_url, monkeypatch):
    from market_warehouse.resources.database import dagster_storage_url, server_url, warehouse_url

    monkeypatch.setenv("DATABASE_URL", empty_url.render_as_string(hide_password=False))
    assert warehouse_url().database == empty_url.database
    assert server_url(database=None).database == empty_url.database
    scratch = server_url(database="mw_scratch_sibling")
    assert scratch.database == "mw_scratch_sibling"
    assert scratch.query == empty_url.query  # same server
    assert dagster_storage_url().database == "dagster"
