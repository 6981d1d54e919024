"""`market-warehouse ui`: the Dagster UI on the project's workspace, with its instance in PostgreSQL.

Run, event-log and schedule storage go to a `dagster` database on the warehouse server (the embedded one by
default) through dagster-postgres, so launched runs, backfills and schedules survive a restart. The URL
reaches Dagster only through the child's environment (`MW_DAGSTER_PG_URL`, read by dagster.yaml), never on a
command line or in a log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from resources.database import dagster_storage_url, redact
from resources.settings import PROJECT_ROOT, Settings, load_settings


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under MW_HOME holding the project's dagster.yaml (refreshed on every start)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def dagster_environment(settings: Settings | None = None) -> dict[str, str]:
    """Environment for any Dagster process of the project: instance home and its storage URL."""
    settings = settings or load_settings()
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(prepare_dagster_home(settings))
    env["MW_DAGSTER_PG_URL"] = dagster_storage_url(settings).render_as_string(hide_password=False)
    return env


def dagster_dev_command(host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    exe = str(dagster) if dagster.exists() else "dagster"
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [exe, "dev", "-w", workspace, "--host", host, "--port", str(port)]


def run_ui(host: str = "127.0.0.1", port: int = 3000, echo=print) -> int:
    """Start `dagster dev` in the foreground; the embedded server stays up while it runs."""
    settings = load_settings()
    env = dagster_environment(settings)
    echo(f"Dagster instance storage: {redact(env['MW_DAGSTER_PG_URL'])}")
    echo(f"Dagster UI: http://{host}:{port}  (Ctrl-C to stop)")
    process = subprocess.Popen(dagster_dev_command(host, port), env=env, cwd=PROJECT_ROOT)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait(timeout=30)
