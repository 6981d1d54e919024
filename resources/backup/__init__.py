"""Backup and restore of the warehouse and of Dagster's instance database, proven by a manifest.

`backup` dumps each database with `pg_dump` in directory format with parallel jobs, inside one exported
snapshot that the manifest's row counts and checksums are read from too, so the manifest describes exactly
the rows in the dump even while loads keep running. `restore` loads a backup into empty databases, following
TimescaleDB's documented procedure when the source had the extension, and then re-reads the restored
databases and compares them with the manifest. The functions take URLs; which databases those are (the
configured warehouse, Dagster's storage) is the command line's business.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from psycopg2 import sql as pgsql
from sqlalchemy.engine import URL

from market_warehouse.resources.backup.clients import (
    BackupError,
    Client,
    find_client,
    run_client,
    server_major,
)
from market_warehouse.resources.backup.snapshot import DatabaseState, compare, snapshot
from market_warehouse.resources.clock import now
from market_warehouse.resources.database import create_engine, drop_database, ensure_database, redact
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.sqlfiles import load_sql, sql_text

__all__ = [
    "MANIFEST",
    "BackupError",
    "DatabaseBackup",
    "DatabaseRestore",
    "RestoreRefused",
    "backup",
    "read_manifest",
    "restore",
]

MANIFEST = "manifest.json"
FORMAT = 1
# TimescaleDB's catalog must be loaded by one job before anything else (timescale/timescaledb#698: a
# parallel pg_restore loads chunk_constraint before chunk and fails, or silently breaks time filters).
_TIMESCALEDB_CATALOG = ("_timescaledb_catalog", "_timescaledb_config")


class RestoreRefused(ConfigurationError):
    """The target cannot take this backup as it is (not empty, wrong TimescaleDB); nothing was changed."""


@dataclass
class DatabaseBackup:
    """One database of a backup: where it came from, its dump folder, its state and what it cost."""

    role: str
    source: str  # redacted URL
    dump: str  # folder name inside the backup
    pg_dump: str
    seconds: float
    bytes: int
    state: DatabaseState

    def as_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "state"}
        return {**out, **self.state.as_dict()}


@dataclass
class DatabaseRestore:
    """One restored database and the differences found against the manifest (none: verified)."""

    role: str
    target: str  # redacted URL
    seconds: float
    state: DatabaseState
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------------------------------------- backup


def backup(sources: Mapping[str, URL], folder: Path, jobs: int = 2) -> list[DatabaseBackup]:
    """Dump every `role -> URL` of `sources` into `folder/<role>` and write `folder/manifest.json` last.

    The manifest appears only once every dump succeeded, so a folder without one is an incomplete backup.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigurationError(f"backup folder {folder} is not empty: choose a new one")
    folder.mkdir(parents=True, exist_ok=True)
    started = now()
    done = [_dump(role, url, folder, jobs) for role, url in sources.items()]
    manifest = {
        "format": FORMAT,
        "created_at": started.isoformat(),
        "jobs": jobs,
        "databases": {d.role: d.as_dict() for d in done},
    }
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(folder / MANIFEST)
    return done


def _dump(role: str, url: URL, folder: Path, jobs: int) -> DatabaseBackup:
    """pg_dump of one database in an exported snapshot, and that same snapshot's state for the manifest.

    The exporting transaction stays open until both are done: the snapshot lives only as long as it."""
    t0 = time.perf_counter()
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
            client = find_client("pg_dump", server_major(version))
            args = ["--format=directory", f"--jobs={jobs}", f"--snapshot={snapshot_id}", "--no-password"]
            # The dump and the manifest's checksums read the same snapshot, so they run side by side.
            with ThreadPoolExecutor(max_workers=1) as pool:
                dumped = pool.submit(run_client, client, [*args, f"--file={folder / role}"], url)
                state = snapshot(conn)
                dumped.result()
            conn.rollback()
    finally:
        engine.dispose()
    size = sum(p.stat().st_size for p in (folder / role).rglob("*") if p.is_file())
    return DatabaseBackup(
        role=role,
        source=redact(url),
        dump=role,
        pg_dump=str(client.major),
        seconds=round(time.perf_counter() - t0, 3),
        bytes=size,
        state=state,
    )


def read_manifest(folder: Path) -> dict:
    """The manifest of a complete backup, or a ConfigurationError saying why `folder` is not one."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ConfigurationError(f"{folder} holds no {MANIFEST}: not a backup, or an incomplete one")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ConfigurationError(
            f"{path}: backup format {manifest.get('format')!r}, this version reads {FORMAT}"
        )
    return manifest


# ---------------------------------------------------------------------------------------------- restore


def restore(
    folder: Path, targets: Mapping[str, URL], force: bool = False, jobs: int = 2
) -> list[DatabaseRestore]:
    """Restore each database of the backup in `folder` that has a target in `targets`, then verify it.

    Every target is checked before anything is written: a non-empty one refuses the whole restore unless
    `force`, which drops and re-creates it. A role of the backup without a target is not restored.
    """
    manifest = read_manifest(folder)
    plan = {role: (entry, targets[role]) for role, entry in manifest["databases"].items() if role in targets}
    to_reset = [
        url for entry, url in plan.values() if _check_target(url, DatabaseState.from_dict(entry), force)
    ]
    for url in to_reset:
        drop_database(url)
        ensure_database(url)
    return [
        _restore_one(role, Path(folder) / entry["dump"], entry, url, jobs)
        for role, (entry, url) in plan.items()
    ]


def _admin_engine(url: URL) -> sa.Engine:
    return create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")


def _check_target(url: URL, expected: DatabaseState, force: bool) -> bool:
    """Refuse a non-empty target unless `force` (then True: it must be re-created) and a server that cannot
    take the backup's TimescaleDB."""
    ensure_database(url)
    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            relations = conn.execute(sql_text("backup/user_relations")).scalar_one()
            if expected.timescaledb_version:
                _check_timescaledb_available(conn, expected, url)
    finally:
        engine.dispose()
    if relations and not force:
        raise RestoreRefused(
            f"{redact(url)} is not empty ({relations} relations): restore needs an empty database "
            "(--force drops and re-creates it)"
        )
    return bool(relations)


def _check_timescaledb_available(conn: sa.Connection, expected: DatabaseState, url: URL) -> None:
    row = conn.execute(sql_text("backup/timescaledb_versions")).mappings().one()
    version = expected.timescaledb_version
    if version not in (row["versions"] or []) or not row["preloaded"]:
        have = ", ".join(row["versions"] or []) or "none"
        raise RestoreRefused(
            f"the backup needs TimescaleDB {version} on {redact(url)} (preloaded); the server offers: {have}"
            f"{'' if row['preloaded'] else ', not in shared_preload_libraries'}"
        )
    license_ = conn.exec_driver_sql("SELECT current_setting('timescaledb.license', true)").scalar()
    if expected.timescaledb_license != "apache" and license_ == "apache":
        raise RestoreRefused(
            f"the backup comes from TimescaleDB under the {expected.timescaledb_license} license (compression, "
            f"continuous aggregates); {redact(url)} runs the Apache-only build, which cannot load them"
        )


def _restore_one(role: str, dump: Path, entry: dict, url: URL, jobs: int) -> DatabaseRestore:
    expected = DatabaseState.from_dict(entry)
    t0 = time.perf_counter()
    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        client = find_client("pg_restore", server_major(version))
        if expected.timescaledb_version:
            _restore_timescaledb(engine, client, dump, url, expected.timescaledb_version, jobs)
        else:
            run_client(client, [*_restore_args(url, dump), f"--jobs={jobs}"], url)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")  # pg_restore leaves planner statistics empty
        seconds = time.perf_counter() - t0
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            actual = snapshot(conn)
            conn.rollback()
    finally:
        engine.dispose()
    return DatabaseRestore(role, redact(url), round(seconds, 3), actual, compare(expected, actual))


def _restore_args(url: URL, dump: Path) -> list[str]:
    """Arguments common to every pg_restore step: the target database (by name; the rest of the connection
    is in the environment) and a stop at the first error, so a failure cannot pass for a restore."""
    escaped = (url.database or "").replace("\\", "\\\\").replace("'", "\\'")
    return [
        "--format=directory",
        f"--dbname=dbname='{escaped}'",
        "--no-owner",
        "--exit-on-error",
        "--no-password",
        str(dump),
    ]


def _restore_timescaledb(
    engine: sa.Engine, client: Client, dump: Path, url: URL, version: str, jobs: int
) -> None:
    """TimescaleDB's procedure: the extension at the backup's version, `timescaledb_pre_restore()`, the
    restore, `timescaledb_post_restore()` (also after a failure, so the database does not stay in restoring
    mode). The catalog schemas load in one job first; everything else in parallel (timescale/docs#820)."""
    with engine.connect() as conn:
        stmt = pgsql.SQL(load_sql("backup/create_timescaledb")).format(version=pgsql.Literal(version))
        conn.exec_driver_sql(stmt.as_string(conn.connection.dbapi_connection))
        installed = conn.exec_driver_sql(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).scalar_one()
        if installed != version:
            raise RestoreRefused(
                f"{redact(url)} already has TimescaleDB {installed}; the backup needs {version} "
                "(create the target from template0 or use --force)"
            )
        conn.execute(sql_text("backup/pre_restore"))
    base = _restore_args(url, dump)
    catalog = [arg for schema in _TIMESCALEDB_CATALOG for arg in ("--schema", schema)]
    rest = [arg for schema in _TIMESCALEDB_CATALOG for arg in ("--exclude-schema", schema)]
    try:
        run_client(client, [*base, "--section=pre-data"], url)
        run_client(client, [*base, "--section=data", *catalog], url)
        run_client(client, [*base, "--section=data", *rest, f"--jobs={jobs}"], url)
        run_client(client, [*base, "--section=post-data", f"--jobs={jobs}"], url)
    finally:
        with engine.connect() as conn:
            conn.execute(sql_text("backup/post_restore"))


def default_jobs() -> int:
    """Parallel pg_dump / pg_restore jobs: one per core, at most 4 (more rarely helps one server)."""
    return max(1, min(4, os.cpu_count() or 1))
