"""Shared fixtures: real PostgreSQL only.

One embedded server per test session; the schema is migrated once into a template database and every test
gets its own copy (CREATE DATABASE … TEMPLATE), so tests are isolated and fast. TimescaleDB variants run
when TIMESCALEDB_URL (full license) / TIMESCALEDB_APACHE_URL (Apache-only) are set, and skip otherwise.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from market_warehouse.resources.database import create_engine, drop_database
from market_warehouse.resources.schema import upgrade
from tests.databases import TEMPLATE_DB, create_database, timescaledb_server_url

_counter = itertools.count()

# The tests' fixed dates (2024-01 onwards) predate the default first partition; the daily partitions are
# built when `pipelines` is first imported (at collection), so the history start is set here, before.
os.environ.setdefault("MW_HISTORY_START", "2024-01-01")


@pytest.fixture(scope="session")
def safe_root():
    """A scratch root outside pytest's tmp: pytest keeps /tmp/pytest-of-<user> at mode 0700 (and re-tightens
    it whenever another pytest session starts), but the embedded server runs as an unprivileged user when
    the tests run as root, and must be able to reach its data folder."""
    root = Path(tempfile.mkdtemp(prefix="mw-tests-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def safe_tmp(safe_root, request):
    """Like `tmp_path`, but reachable by the embedded server's user."""
    path = Path(tempfile.mkdtemp(prefix=f"{request.node.name[:40]}-", dir=safe_root))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(safe_root):
    """Keep tests away from the developer's project-local embedded server and landing folder."""
    home = safe_root / "mw-home"
    home.mkdir()
    old = {k: os.environ.get(k) for k in ("MW_HOME", "DATABASE_URL")}
    os.environ["MW_HOME"] = str(home)
    os.environ.pop("DATABASE_URL", None)
    yield home
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pg_server(_isolated_home):
    """The session's embedded PostgreSQL server."""
    from market_warehouse.resources.embedded import start_embedded

    server = start_embedded(_isolated_home / "pgdata")
    yield server
    server.cleanup()  # stops it unless another process (a test's subprocess) still holds it


@pytest.fixture(scope="session")
def server_url(pg_server) -> URL:
    from market_warehouse.resources.embedded import embedded_url

    return embedded_url(pg_server, "postgres")


@pytest.fixture(scope="session")
def template_url(server_url) -> URL:
    url = create_database(server_url, TEMPLATE_DB)
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def _test_db_name() -> str:
    return f"t_{os.getpid()}_{next(_counter)}"


@pytest.fixture
def empty_url(server_url):
    """An empty database on the embedded server (for migration tests)."""
    url = create_database(server_url, _test_db_name())
    yield url
    drop_database(url)


@pytest.fixture
def db_url(template_url):
    """A migrated database of the test's own, copied from the template."""
    url = create_database(template_url, _test_db_name(), template=TEMPLATE_DB)
    yield url
    drop_database(url)


@pytest.fixture
def engine(db_url):
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def timescaledb_empty_url(request):
    """An empty database with the extension on a TimescaleDB server; the backend comes from the param."""
    backend = getattr(request, "param", "timescaledb")
    server = timescaledb_server_url(backend)
    url = create_database(server, f"mw_test_{uuid.uuid4().hex[:10]}")
    yield url
    drop_database(url)


@pytest.fixture(params=["postgres", "timescaledb", "timescaledb-apache"])
def any_backend_url(request, template_url):
    """A migrated database on each backend in turn (TimescaleDB ones skip without their URL)."""
    if request.param == "postgres":
        url = create_database(template_url, _test_db_name(), template=TEMPLATE_DB)
    else:
        server = timescaledb_server_url(request.param)
        url = create_database(server, f"mw_test_{uuid.uuid4().hex[:10]}")
        engine = create_engine(url, poolclass=sa.NullPool)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def any_engine(any_backend_url):
    eng = create_engine(any_backend_url)
    yield eng
    eng.dispose()
