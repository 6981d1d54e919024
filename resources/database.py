"""Connecting to the warehouse: URL resolution, engines, and errors a user can act on.

The URL comes from `DATABASE_URL` or, when unset, from the embedded server. Bare `postgresql://` URLs are
pinned to psycopg2 (SQLAlchemy 2.1 would otherwise pick psycopg 3, which this project does not install).
Passwords never leave this module: anything printed or logged goes through `redact`.
"""

from __future__ import annotations

import functools
import logging

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from market_warehouse.resources.settings import (
    DAGSTER_DB,
    WAREHOUSE_DB,
    ConfigurationError,
    Settings,
    load_settings,
)
from market_warehouse.resources.sqlfiles import load_sql

log = logging.getLogger(__name__)

_SYNC_DRIVER = "postgresql+psycopg2"
_ASYNC_DRIVER = "postgresql+asyncpg"


def redact(url: URL | str) -> str:
    """The URL as text with its password masked: the only form in which a URL is ever shown."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def normalize_url(raw: str | URL) -> URL:
    """Parse a PostgreSQL URL and name the psycopg2 driver explicitly."""
    try:
        url = make_url(raw) if isinstance(raw, str) else raw
    except ArgumentError:
        raise ConfigurationError("DATABASE_URL is not a valid database URL") from None
    backend = url.get_backend_name()
    if backend not in {"postgresql", "postgres"}:
        raise ConfigurationError(f"DATABASE_URL must point to PostgreSQL, not {backend!r}: {redact(url)}")
    return url.set(drivername=_SYNC_DRIVER)


def async_url(url: URL) -> URL:
    """The same database for SQLAlchemy asyncio (asyncpg takes a socket directory as `host` too)."""
    query = dict(url.query)
    query.pop("sslmode", None)
    return url.set(drivername=_ASYNC_DRIVER, query=query)


@functools.cache
def _embedded_server(pgdata: str):
    from pathlib import Path

    from market_warehouse.resources.embedded import start_embedded

    return start_embedded(Path(pgdata))


def server_url(settings: Settings | None = None, database: str | None = None) -> URL:
    """URL of `database` on the configured server (created if missing); None means the warehouse itself.

    With DATABASE_URL the warehouse is the database it names; any other name is a sibling database on the same
    server (Dagster's storage, a benchmark's scratch database) — never silently the warehouse. The embedded
    server is started on first use.
    """
    settings = settings or load_settings()
    if settings.database_url:
        url = normalize_url(settings.database_url)
        if database is None or database == url.database:
            return url
        url = url.set(database=database)
    else:
        from market_warehouse.resources.embedded import embedded_url

        url = embedded_url(_embedded_server(str(settings.embedded_pgdata)), database or WAREHOUSE_DB)
    ensure_database(url)
    return url


def warehouse_url(settings: Settings | None = None) -> URL:
    return server_url(settings)


def dagster_storage_url(settings: Settings | None = None) -> URL:
    """Dagster's own storage: a separate database on the warehouse server (same server by default)."""
    return server_url(settings, DAGSTER_DB)


def ensure_database(url: URL) -> None:
    """Create the database named in `url` if it does not exist (needs CREATEDB on a real server)."""
    from psycopg2 import sql

    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            )
            if exists.scalar() is None:
                stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database))
                conn.exec_driver_sql(stmt.as_string(conn.connection.dbapi_connection))
    finally:
        admin.dispose()


def drop_database(url: URL) -> None:
    """Drop the database named in `url` (scratch and test databases), closing its sessions first."""
    from psycopg2 import sql

    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            stmt = sql.SQL(load_sql("common/drop_database")).format(database=sql.Identifier(url.database))
            conn.exec_driver_sql(stmt.as_string(conn.connection.dbapi_connection))
    finally:
        admin.dispose()


def create_engine(url: URL | str, **kwargs) -> Engine:
    """A psycopg2 engine whose connection failures become one clear `ConfigurationError` line."""
    url = normalize_url(url)
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("application_name", "market-warehouse")
    connect_args.setdefault("connect_timeout", 10)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise ConfigurationError(f"cannot connect to {redact(url)}: {reason}") from None
    return engine


def warehouse_engine(settings: Settings | None = None, **kwargs) -> Engine:
    """Engine on the warehouse database of the configured server."""
    return create_engine(warehouse_url(settings), **kwargs)
