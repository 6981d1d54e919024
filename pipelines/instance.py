"""The project's Dagster instance, resolved at run time: Dagster's own commands work in the project root.

Without `DAGSTER_HOME`, `dagster dev`, `dg dev`, `dagster job execute` and `dagster asset materialize` read
the `dagster.yaml` of the current folder, and every process they start (webserver, daemon, code server, run
and step workers) rebuilds the instance from that configuration. A storage URL written in the YAML would
have to come from a variable the user must export first (and would carry a password); the classes here
resolve it in each process from the project's settings instead (`MW_HOME`, `DATABASE_URL`), starting or
attaching the embedded server when needed. So `dagster.yaml` names no variable and holds no secret, and
every command (those run in the root and `market-warehouse ui`, whose `DAGSTER_HOME` holds a copy of the
same file) shares one instance: runs, event logs and schedules in the `dagster` database of the warehouse
server, run artifacts and captured logs in `$MW_HOME/dagster`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster._core.instance.ref import compute_logs_directory
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from sqlalchemy.engine import URL

from market_warehouse.resources.database import dagster_storage_url, normalize_url
from market_warehouse.resources.settings import Settings, load_settings

# A Dagster storage database other than the project's default one (e.g. created by an administrator when the
# user in DATABASE_URL may not create databases). Optional: nothing needs it.
STORAGE_URL_ENV = "MW_DAGSTER_PG_URL"


def instance_storage_url(settings: Settings | None = None) -> URL:
    """Where the instance keeps runs, event logs and schedules: `MW_DAGSTER_PG_URL`, else the `dagster`
    database on the warehouse server (created on first use; the embedded server is started if needed)."""
    override = os.environ.get(STORAGE_URL_ENV)
    if override:
        return normalize_url(override)
    return dagster_storage_url(settings)


def instance_home(settings: Settings | None = None) -> Path:
    """The instance's folder for run artifacts and captured logs: `$MW_HOME/dagster`, whatever the cwd."""
    home = (settings or load_settings()).dagster_home
    home.mkdir(parents=True, exist_ok=True)
    return home


class _ResolvedWhenLoaded:
    """A configurable instance class with an empty config in `dagster.yaml`: what it needs (URL, folders) is
    resolved from the project's settings in the process that loads it, by `resolved()`."""

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict):  # type: ignore[override]
        return cls(inst_data=inst_data, **cls.resolved())

    @classmethod
    def resolved(cls) -> dict:
        """The constructor arguments besides `inst_data`."""
        raise NotImplementedError


class ProjectStorage(_ResolvedWhenLoaded, DagsterPostgresStorage):
    """dagster-postgres storage on `instance_storage_url()`, resolved in the process that loads it.

    Configured in `dagster.yaml` under `storage: custom:` with an empty config; the URL, and any password
    in it, never enters the instance configuration that Dagster serializes onto its processes' command lines.
    """

    @classmethod
    def resolved(cls) -> dict:
        return {"postgres_url": instance_storage_url().render_as_string(hide_password=False)}


class ProjectArtifactStorage(_ResolvedWhenLoaded, LocalArtifactStorage):
    """Run artifacts under `instance_home()`: not in the temporary folder Dagster's CLI makes in the cwd
    when `DAGSTER_HOME` is unset, which it deletes on exit."""

    @classmethod
    def resolved(cls) -> dict:
        return {"base_dir": str(instance_home())}


class ProjectComputeLogManager(_ResolvedWhenLoaded, LocalComputeLogManager):
    """Captured stdout/stderr of steps where Dagster keeps them by default (`<instance home>/storage`), so
    the UI shows the logs of runs started by any command."""

    @classmethod
    def resolved(cls) -> dict:
        return {"base_dir": compute_logs_directory(str(instance_home()))}
