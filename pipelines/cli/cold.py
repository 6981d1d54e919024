"""`market-warehouse cold restore`: load rows of the Parquet cold tier back into the database (issue 16).

The files stay where they are and stay listed in `cold_pieces`; the rows go through the upsert engine, so a
second restore of the same range writes nothing. The work is in `resources.maintenance.cold`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


@click.group()
def cold() -> None:
    """The Parquet cold tier that retention exports to (`maintenance: cold:` in the universe file)."""


@cold.command("restore")
@click.option("--table", required=True, help="Time-series table, e.g. ohlcv or market_trades.")
@click.option("--from", "start", required=True, type=click.DateTime(DATE_FORMATS), help="UTC, inclusive.")
@click.option("--to", "end", required=True, type=click.DateTime(DATE_FORMATS), help="UTC, exclusive.")
@click.option("--exchange", help="Only this exchange.")
@click.option("--symbol", help="Only this symbol.")
def cold_restore(
    table: str, start: datetime, end: datetime, exchange: str | None, symbol: str | None
) -> None:
    """Upsert the cold rows with time in [--from, --to) back into TABLE; idempotent."""
    from market_warehouse.resources.database import redact, warehouse_engine
    from market_warehouse.resources.maintenance.cold import restore

    lo, hi = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    if lo >= hi:
        raise click.BadParameter("--from must be before --to", param_hint="--from")
    engine = warehouse_engine()
    try:
        result = restore(engine, table, lo, hi, exchange, symbol)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--table") from None
    finally:
        engine.dispose()
    click.echo(
        f"{redact(engine.url)}: {table} [{lo.isoformat()}, {hi.isoformat()}): {result.rows:,} cold rows, "
        f"{result.inserted:,} inserted, {result.updated:,} updated, {result.unchanged:,} unchanged"
    )
