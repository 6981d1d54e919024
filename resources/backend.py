"""Which of the three backends we are talking to, and what it can do.

Detected at run time, never configured by hand: the same code runs on plain PostgreSQL (RDS, embedded),
TimescaleDB under the Apache license (Azure) and TimescaleDB with its full license. A missing optional
feature is reported through `Capabilities`, never raised.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from market_warehouse.resources.settings import ConfigurationError, load_settings
from market_warehouse.resources.sqlfiles import sql_text

MIN_TIMESCALEDB = (2, 13)


class Backend(enum.StrEnum):
    POSTGRES = "postgres"
    TIMESCALEDB = "timescaledb"  # full (Timescale License): compression and continuous aggregates
    TIMESCALEDB_APACHE = "timescaledb-apache"  # hypertables and drop_chunks only


@dataclass(frozen=True)
class Capabilities:
    backend: Backend
    server_version: str
    timescaledb_version: str | None
    timescaledb_license: str | None

    @property
    def hypertables(self) -> bool:
        return self.backend is not Backend.POSTGRES

    @property
    def native_partitions(self) -> bool:
        return self.backend is Backend.POSTGRES

    @property
    def compression(self) -> bool:
        return self.backend is Backend.TIMESCALEDB

    @property
    def continuous_aggregates(self) -> bool:
        return self.backend is Backend.TIMESCALEDB

    @property
    def sql_folder(self) -> str:
        """Folder of backend-specific SQL: hypertable DDL works alike under both TimescaleDB licenses."""
        return "postgres" if self.backend is Backend.POSTGRES else "timescaledb"

    def as_dict(self) -> dict:
        out = asdict(self)
        out["backend"] = self.backend.value
        for name in ("hypertables", "native_partitions", "compression", "continuous_aggregates"):
            out[name] = getattr(self, name)
        return out


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("-")[0].split(".")[:2] if part.isdigit())


def detect(conn: sa.Connection) -> Capabilities:
    """Read the server version, the TimescaleDB extension (installed in this database) and its license."""
    row = conn.execute(sql_text("common/backend_info")).mappings().one()
    return capabilities_from(row, load_settings().timescaledb)


def engine_capabilities(engine: sa.Engine, known: Capabilities | None = None) -> Capabilities:
    """`known` when the caller already detected them (a job passing them along its steps), else detected
    on a connection of `engine`."""
    if known is not None:
        return known
    with engine.connect() as conn:
        return detect(conn)


def capabilities_from(row: Mapping[str, str | None], mode: str = "auto") -> Capabilities:
    """Decide the backend from `common/backend_info`'s row; refuse a TimescaleDB we cannot support."""
    version = row["timescaledb_version"]
    if version is None or mode == "off":
        return Capabilities(Backend.POSTGRES, row["server_version"], None, None)
    if _version_tuple(version) < MIN_TIMESCALEDB:
        need = ".".join(map(str, MIN_TIMESCALEDB))
        raise ConfigurationError(f"TimescaleDB {version} is too old: market-warehouse needs {need} or newer")
    license_ = row["timescaledb_license"] or "timescale"
    backend = Backend.TIMESCALEDB_APACHE if license_ == "apache" else Backend.TIMESCALEDB
    return Capabilities(backend, row["server_version"], version, license_)


def timescaledb_available(conn: sa.Connection) -> bool:
    """True when the extension can be created here: packaged on the server and preloaded."""
    if load_settings().timescaledb == "off":
        return False
    row = conn.execute(sql_text("common/timescaledb_available")).mappings().one()
    return bool(row["available"]) and "timescaledb" in (row["preload"] or "")
