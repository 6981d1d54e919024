"""Dagster's own commands work in the project root with no variable to export (issue 11, part 4), on the
instance of `market-warehouse ui`: `dagster job execute`, `dagster asset materialize`, `dagster dev`, `dg dev`.

Each command runs as a user would type it: a subprocess in the repository root, with a fresh `MW_HOME` and
neither `DAGSTER_HOME`, `MW_DAGSTER_PG_URL` nor `DATABASE_URL` in its environment. What it recorded is then
read back through the instance `market-warehouse ui` uses (`DAGSTER_HOME=$MW_HOME/dagster`) and through the
GraphQL API of each server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import requests
import sqlalchemy as sa
from dagster._core.instance.ref import InstanceRef
from dagster_shared.serdes import serialize_value

from market_warehouse.resources.database import create_engine, dagster_storage_url, warehouse_engine
from market_warehouse.resources.embedded import start_embedded
from market_warehouse.resources.schema import upgrade
from market_warehouse.resources.settings import DAGSTER_DB, PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
UNUSED_YAML_WARNING = "will not be used to configure Dagster"
SERVER_QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  runsOrError { ... on Runs { results { runId jobName status } } }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def home(safe_root) -> Path:
    """A fresh MW_HOME with a migrated warehouse; this process holds the embedded server up meanwhile."""
    path = Path(tempfile.mkdtemp(prefix="dagster-cli-", dir=safe_root))
    path.chmod(0o755)
    server = start_embedded(path / "pgdata")
    engine = warehouse_engine(Settings(database_url=None, home=path, timescaledb="auto"))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    yield path
    server.cleanup()


@pytest.fixture(scope="module")
def user_env(home) -> dict[str, str]:
    """The shell of a user in the project root: the project's venv on PATH, no Dagster variable set."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "MW_DAGSTER_PG_URL", "DATABASE_URL"}
    }
    env.update(MW_HOME=str(home), VIRTUAL_ENV=sys.prefix, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def _run(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert UNUSED_YAML_WARNING not in output
    return done


def _project_runs(home: Path, monkeypatch) -> dict[str, dg.DagsterRunStatus]:
    """Runs as `market-warehouse ui` sees them: its environment, `DagsterInstance.get()`."""
    from market_warehouse.pipelines.cli.ui import dagster_environment

    monkeypatch.setenv("MW_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MW_DAGSTER_PG_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", dagster_environment()["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        return {run.run_id: run.status for run in instance.get_runs()}


def _new_run(home: Path, before: dict) -> str:
    """The one run the instance holds now and did not before. The console shows no run id: dagster.yaml
    keeps Dagster's DEBUG events (RUN_START, ...) off it."""
    with pytest.MonkeyPatch.context() as patch:
        (run_id,) = set(_project_runs(home, patch)) - set(before)
    return run_id


@pytest.fixture(scope="module")
def executed_run(user_env, home) -> str:
    """`dagster job execute -m market_warehouse.pipelines.definitions -j nightly_maintenance` in the root: its run id."""
    with pytest.MonkeyPatch.context() as patch:
        before = _project_runs(home, patch)
    started = time.perf_counter()
    done = _run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "market_warehouse.pipelines.definitions",
            "-j",
            "nightly_maintenance",
        ],
        user_env,
    )
    print(f"dagster job execute nightly_maintenance: {time.perf_counter() - started:.1f}s")
    assert " - DEBUG - " not in done.stderr  # python_logs of dagster.yaml: INFO and above on the console
    return _new_run(home, before)


def test_job_execute_in_the_root_records_its_run_in_the_project_instance(executed_run, home, monkeypatch):
    assert _project_runs(home, monkeypatch)[executed_run] == dg.DagsterRunStatus.SUCCESS
    # Captured step logs live in the instance's folder, not in Dagster's temporary folder of the cwd.
    assert list((home / "dagster" / "storage" / executed_run / "compute_logs").glob("*.out"))
    assert not list(PROJECT_ROOT.glob(".tmp_dagster_home_*/storage"))


def test_asset_materialize_in_the_root_records_its_run_in_the_project_instance(user_env, home, monkeypatch):
    before = _project_runs(home, monkeypatch)
    started = time.perf_counter()
    _run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "--select",
            "warehouse_stats",
            "-m",
            "market_warehouse.pipelines.definitions",
        ],
        user_env,
    )
    print(f"dagster asset materialize warehouse_stats: {time.perf_counter() - started:.1f}s")
    run_id = _new_run(home, before)
    assert _project_runs(home, monkeypatch)[run_id] == dg.DagsterRunStatus.SUCCESS
    with dg.DagsterInstance.get() as instance:  # still the ui's environment, set by _project_runs
        latest = instance.get_latest_materialization_event(dg.AssetKey("warehouse_stats"))
    assert latest is not None and latest.run_id == run_id


def _wait_until_serving(port: int, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited early with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"not serving after {timeout}s:\n{log.read_text()[-4000:]}")


def _as_in_a_terminal() -> None:
    """The signal dispositions of a command typed in a terminal. A suite started in the background of a
    non-interactive shell (`.ci/run &`, nohup) runs with SIGINT, SIGQUIT and SIGHUP ignored, and an ignored
    signal stays ignored across exec: `dagster dev` then never gets the Ctrl-C this test sends (Python
    installs no KeyboardInterrupt handler for an ignored SIGINT) while its webserver and daemon, which set
    their own handlers, stop and wait for it. Found with /proc/<pid>/status (SigIgn 0x1005007)."""
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _stop(process: subprocess.Popen) -> int:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, then wait for a clean exit."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        stuck = _process_states(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"did not stop within 90 s of SIGINT; processes left:\n{stuck}") from None


def _process_states(pid: int) -> str:
    """What each process of the tree was doing: command, state, kernel wait channel and signal masks (an
    ignored or blocked SIGINT sets the 0x2 bit of SigIgn / SigBlk), so a hang says why."""
    lines = []
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            masks = " ".join(
                s.replace("\t", "") for s in status if s.startswith(("SigBlk", "SigIgn", "SigCgt"))
            )
            wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
            lines.append(f"{proc.pid} {proc.status()} wchan={wchan} {masks} {' '.join(proc.cmdline())[:200]}")
        except (psutil.Error, OSError) as exc:
            lines.append(f"{proc.pid}: {exc}")
    spy = shutil.which("py-spy")
    if spy:  # a developer's machine may have it: the Python stack of the process that did not stop
        dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
        lines.append(dump.stdout + dump.stderr)
    return "\n".join(lines)


SERVERS = {
    "dagster dev": [str(BIN / "dagster"), "dev"],
    "dg dev": [str(BIN / "dg"), "dev"],
    "market-warehouse ui": [sys.executable, "-m", "market_warehouse.pipelines.cli", "ui"],
}


@pytest.mark.parametrize("name", list(SERVERS))
def test_dev_servers_in_the_root_serve_the_code_location_on_the_project_instance(
    name, executed_run, user_env, home, safe_tmp
):
    port = _free_port()
    log = safe_tmp / "server.log"
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            [*SERVERS[name], "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=user_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_as_in_a_terminal,
        )
        try:
            _wait_until_serving(port, process, log)
            print(f"{name}: serving after {time.perf_counter() - started:.1f}s")
            answer = requests.post(
                f"http://127.0.0.1:{port}/graphql", json={"query": SERVER_QUERY}, timeout=120
            ).json()
        finally:
            code = _stop(process)
    assert "errors" not in answer, answer
    entries = answer["data"]["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["loadStatus"]) for e in entries] == [("market_warehouse", "LOADED")]
    runs = {r["runId"]: r["status"] for r in answer["data"]["runsOrError"]["results"]}
    assert runs.get(executed_run) == "SUCCESS"  # the run `dagster job execute` recorded: same instance

    output = log.read_text()
    assert UNUSED_YAML_WARNING not in output
    assert code in (0, 130, -signal.SIGINT), output[-4000:]
    # Every Dagster process detached from the embedded server on its way out: only this test process is left.
    assert (home / "pgdata" / ".handle_pids.json").read_text().strip() == f"[{os.getpid()}]"


def test_instance_in_the_root_uses_the_dagster_database_of_database_url_and_serializes_no_password(
    server_url, monkeypatch
):
    # The embedded server trusts local connections, so any password is accepted and must never show up.
    url = server_url.set(database="mw_cli_warehouse", password="not-for-logs-8431")
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("MW_DAGSTER_PG_URL", raising=False)
    expected = dagster_storage_url()
    assert expected.database == DAGSTER_DB and expected.query == url.query

    ref = InstanceRef.from_dir(str(PROJECT_ROOT))
    assert "not-for-logs-8431" not in serialize_value(ref)
    with dg.DagsterInstance.from_ref(ref) as instance:
        used = sa.make_url(instance.run_storage.postgres_url)
        result = _noop_job.execute_in_process(instance=instance)
    assert (used.database, used.query) == (DAGSTER_DB, url.query)
    engine = create_engine(server_url.set(database=DAGSTER_DB), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :r"), {"r": result.run_id})
            assert stored.scalar() == "SUCCESS"
    finally:
        engine.dispose()


@dg.op
def _noop() -> None:
    pass


@dg.job
def _noop_job() -> None:
    _noop()
