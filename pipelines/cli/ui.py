"""`market-warehouse ui`: the Dagster UI on the project's workspace, with its instance in PostgreSQL.

Run, event-log and schedule storage go to a `dagster` database on the warehouse server (the embedded one by
default) through dagster-postgres, so launched runs, backfills and schedules survive a restart. The project's
`dagster.yaml` is copied to `DAGSTER_HOME=$MW_HOME/dagster`; its classes (`pipelines.instance`) resolve the
storage URL inside each Dagster process, so the URL is never on a command line, in the environment or in a
log, and Dagster commands run in the project root use the same instance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from market_warehouse.pipelines.instance import instance_home, instance_storage_url
from market_warehouse.resources.database import redact
from market_warehouse.resources.settings import PROJECT_ROOT, Settings, load_settings

# Seconds `dagster dev` gets to stop after the terminal's Ctrl-C before it is sent one, then before it is killed
# (it gives its own services 60 s).
INTERRUPT_GRACE_SECONDS = 15
SHUTDOWN_SECONDS = 90


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under MW_HOME holding the project's dagster.yaml (refreshed on every start), for the
    commands that insist on DAGSTER_HOME (`DagsterInstance.get()`, `dagster run list`, `dagster-daemon`)."""
    home = instance_home(settings)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def dagster_environment(settings: Settings | None = None) -> dict[str, str]:
    """Environment for any Dagster process of the project: the instance home (the storage URL is resolved
    by the instance's own classes)."""
    settings = settings or load_settings()
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(prepare_dagster_home(settings))
    return env


def dagster_dev_command(host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    exe = str(dagster) if dagster.exists() else "dagster"
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [exe, "dev", "-w", workspace, "--host", host, "--port", str(port)]


def run_ui(host: str = "127.0.0.1", port: int = 3000, echo=print) -> int:
    """Start `dagster dev` in the foreground; the embedded server stays up while it runs.

    It runs in DAGSTER_HOME: in the project root, Dagster would warn that the root's dagster.yaml (the same
    file) is not the one it uses.
    """
    settings = load_settings()
    env = dagster_environment(settings)
    echo(f"Dagster instance storage: {redact(instance_storage_url(settings))}")
    echo(f"Dagster UI: http://{host}:{port}  (Ctrl-C to stop)")
    process = subprocess.Popen(dagster_dev_command(host, port), env=env, cwd=env["DAGSTER_HOME"])
    try:
        return process.wait()
    except KeyboardInterrupt:
        return _stop_after_interrupt(process)


def _stop_after_interrupt(process: subprocess.Popen) -> int:
    """Ctrl-C reached the whole process group, `dagster dev` included: let it stop its webserver and daemon
    (a second signal during that aborts it and strands them); forward the interrupt only if it did not get
    one, and kill it only if it hangs."""
    try:
        return process.wait(timeout=INTERRUPT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
