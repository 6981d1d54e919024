"""`market-warehouse ui` starts the Dagster webserver with PostgreSQL instance storage, and the UI sees
everything the code location defines (assets, checks, jobs, schedules, sensors)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import sqlalchemy as sa

from market_warehouse.pipelines.definitions import defs
from market_warehouse.resources.database import create_engine

QUERY = """
{
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { jobs { name } schedules { name } sensors { name } }
    }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy } } }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ui exited early with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} not up after {timeout}s")


@pytest.fixture
def running_ui(server_url, safe_tmp):
    port = _free_port()
    env = {
        **os.environ,
        "MW_HOME": str(safe_tmp / "home"),
        "DATABASE_URL": server_url.set(database="mw_ui_test").render_as_string(hide_password=False),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "market_warehouse.pipelines.cli", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", process)
        yield port, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_ui_serves_the_whole_code_location_with_postgres_storage(running_ui, server_url):
    port, process = running_ui
    answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=60).json()
    assert "errors" not in answer, answer
    data = answer["data"]

    served_assets = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    declared_assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert served_assets == declared_assets

    served_checks = {
        c["name"] for node in data["assetNodes"] for c in node["assetChecksOrError"].get("checks", [])
    }
    declared_checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert served_checks == declared_checks

    (repo,) = data["repositoriesOrError"]["nodes"]
    assert {s["name"] for s in repo["schedules"]} == {s.name for s in defs.schedules or []}
    assert {s["name"] for s in repo["sensors"]} == {s.name for s in defs.sensors or []}
    declared_jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert declared_jobs <= {j["name"] for j in repo["jobs"]}

    daemons = {d["daemonType"]: d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]}
    assert daemons.get("SCHEDULER") and daemons.get("SENSOR")

    # The instance lives in PostgreSQL: a `dagster` database on the warehouse server holds the run storage.
    engine = create_engine(server_url.set(database="dagster"), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            tables = set(conn.execute(sa.text("SELECT tablename FROM pg_tables")).scalars())
    finally:
        engine.dispose()
    assert {"runs", "event_logs", "jobs"} <= tables
