"""Thin Dagster wrappers around the plain-Python resources: the only module in `resources` importing Dagster.

The URL is configured through `EnvVar("DATABASE_URL")` in the definitions so that the Dagster UI shows the
variable's name, never its value. Unset means the embedded server.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from market_warehouse.resources.backend import Capabilities, engine_capabilities
from market_warehouse.resources.database import create_engine, normalize_url, warehouse_url


@functools.cache
def _engine_for(url_text: str) -> sa.Engine:
    """One pool per process and URL: assets of one run share it instead of reconnecting."""
    return create_engine(url_text, pool_size=5, max_overflow=5)


class WarehouseResource(ConfigurableResource):
    """The warehouse database. `database_url` empty → embedded PostgreSQL under MW_HOME."""

    database_url: str | None = None
    _caps: Capabilities | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._caps = None

    def url(self) -> sa.URL:
        return normalize_url(self.database_url) if self.database_url else warehouse_url()

    def engine(self) -> sa.Engine:
        return _engine_for(self.url().render_as_string(hide_password=False))

    def capabilities(self) -> Capabilities:
        self._caps = engine_capabilities(self.engine(), self._caps)
        return self._caps


class ExchangeResource(ConfigurableResource):
    """The exchanges of the universe YAML (`universe_path` empty → `MW_UNIVERSE`, else the shipped demo).

    `api_base_url` points every ccxt exchange's REST API at another host (a recorded local server in tests);
    the `backoff_*` settings bound retries of one rate-limited or failing request inside a step, the
    `step_retry_*` settings the retries of a whole market-data step after a transient error (an exchange or
    database outage outlasting the in-call back-off); other errors are never retried (`resources.retry`).
    """

    universe_path: str | None = None
    api_base_url: str | None = None
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    backoff_max_retries: int = 6
    step_retry_max_retries: int = 3
    step_retry_base_seconds: float = 15.0
    step_retry_max_seconds: float = 300.0
    _clients: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._clients = {}

    def universe(self):
        from market_warehouse.resources.exchanges.universe import load_universe

        return load_universe(self.universe_path)

    def client(self, config):
        """One ccxt (or synthetic) instance per exchange and run, so ccxt's throttle sees every request."""
        from market_warehouse.resources.exchanges.client import build_exchange

        if config.name not in self._clients:
            self._clients[config.name] = build_exchange(config, api_base_url=self.api_base_url)
        return self._clients[config.name]

    def backoff(self):
        """The back-off of one exchange call."""
        from market_warehouse.resources.retry import Backoff

        return Backoff(
            base_delay=self.backoff_base_seconds,
            max_delay=self.backoff_max_seconds,
            max_retries=self.backoff_max_retries,
        )

    def step_backoff(self):
        """The back-off between tries of a whole step (Dagster waits; `sleep` is not used)."""
        from market_warehouse.resources.retry import Backoff

        return Backoff(
            base_delay=self.step_retry_base_seconds,
            max_delay=self.step_retry_max_seconds,
            max_retries=self.step_retry_max_retries,
        )


class LandingFolderResource(ConfigurableResource):
    """The landing folder of historical files. `path` empty → `$MW_HOME/landing` (created on first use).

    `default_timezone` is the zone of naive ISO times in files that declare none (unset: such files fail);
    the sensor leaves files modified less than `settle_seconds` ago for its next tick (still being written).
    """

    path: str | None = None
    default_timezone: str | None = None
    settle_seconds: float = 5.0

    def folder(self) -> Path:
        from market_warehouse.resources.settings import load_settings

        return Path(self.path).expanduser() if self.path else load_settings().landing_dir
