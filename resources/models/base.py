"""Declarative base, shared column types and the registry of time-series tables.

Constraint names follow one naming convention so Alembic migrations, downgrades and `alembic check`
see the same names on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import MetaData, Numeric
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Market data (prices, volumes) are floats; money in our own books is exact.
Price = DOUBLE_PRECISION
Money = Numeric(28, 10)
UtcTimestamp = TIMESTAMP(timezone=True)
Json = JSONB


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class TimeseriesSpec:
    """How a time-series table is partitioned: hypertable chunks or native range partitions alike."""

    table: str
    time_column: str
    chunk_interval: timedelta


TIMESERIES: dict[str, TimeseriesSpec] = {}


def timeseries(time_column: str = "time", chunk_interval: timedelta = timedelta(days=7)):
    """Class decorator registering a model as a time-series table (its key must contain `time_column`)."""

    def register(cls):
        name = cls.__tablename__
        TIMESERIES[name] = TimeseriesSpec(name, time_column, chunk_interval)
        return cls

    return register
