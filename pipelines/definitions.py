"""The Dagster code location: every domain module contributes its own `Definitions`, merged here."""

from __future__ import annotations

import os

import dagster as dg

from pipelines import derived, history, maintenance, market_data, quality
from resources.dagster_resources import WarehouseResource


def _warehouse() -> WarehouseResource:
    # EnvVar keeps the URL out of the UI and of run configs; no variable means the embedded server.
    if os.environ.get("DATABASE_URL"):
        return WarehouseResource(database_url=dg.EnvVar("DATABASE_URL"))
    return WarehouseResource()


defs = dg.Definitions.merge(
    dg.Definitions(resources={"warehouse": _warehouse()}),
    market_data.defs,
    history.defs,
    derived.defs,
    quality.defs,
    maintenance.defs,
)
