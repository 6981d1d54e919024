"""`market-warehouse demo`: the whole pipeline on the configured server, offline, with a summary."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from resources.database import redact, warehouse_engine
from resources.dbinfo import database_info
from resources.schema import upgrade


def run_demo(echo: Callable[[str], None] = print) -> dg.ExecuteInProcessResult | None:
    """Migrate, materialize every asset of the code location, and print what the warehouse now holds."""
    from pipelines.definitions import defs

    engine = warehouse_engine()
    try:
        echo(f"warehouse: {redact(engine.url)}")
        upgrade(engine)
        result = None
        assets = list(defs.assets or [])
        if assets:
            echo(f"materializing {len(assets)} asset definitions ...")
            result = dg.materialize(assets, resources=defs.resources, raise_on_error=True)
        info = database_info(engine)
    finally:
        engine.dispose()
    caps = info.capabilities
    echo(f"backend: {caps.backend.value} (PostgreSQL {caps.server_version}), schema {info.schema_revision}")
    for table in info.tables:
        if table.row_estimate:
            echo(f"  {table.table_name:<24} ~{table.row_estimate:,} rows")
    echo("next: `market-warehouse db info` for every table, `market-warehouse ui` for the Dagster UI")
    return result
