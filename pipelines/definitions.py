"""The Dagster code location: every domain package of `pipelines/defs/` contributes its `Definitions`,
merged here with the one resource they all share."""

from __future__ import annotations

import os

import dagster as dg

from market_warehouse.pipelines.catalog import with_catalog_facts
from market_warehouse.pipelines.defs import (
    derived,
    ingestion,
    maintenance,
    market_data,
    observability,
    stream,
)
from market_warehouse.resources.dagster_resources import WarehouseResource


def _warehouse() -> WarehouseResource:
    # EnvVar keeps the URL out of the UI and of run configs; no variable means the embedded server.
    if os.environ.get("DATABASE_URL"):
        return WarehouseResource(database_url=dg.EnvVar("DATABASE_URL"))
    return WarehouseResource()


# Owners, code references and freshness policies (pipelines/catalog.py) are added to the merged assets.
defs = with_catalog_facts(
    dg.Definitions.merge(
        dg.Definitions(resources={"warehouse": _warehouse()}),
        market_data.defs,
        ingestion.defs,
        derived.defs,
        maintenance.defs,
        observability.defs,
        stream.defs,
    )
)
