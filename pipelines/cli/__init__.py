"""`market-warehouse` command line.

Configuration problems (unreachable server, old TimescaleDB, bad URL) end in one line on stderr and exit
code 2, never in a bare traceback, and never show a password.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from market_warehouse.pipelines.cli.backup import backup, restore
from market_warehouse.pipelines.cli.cold import cold
from market_warehouse.pipelines.cli.load import load
from market_warehouse.pipelines.cli.quality import archive, quarantine
from market_warehouse.pipelines.cli.stream import stream
from market_warehouse.resources.settings import ConfigurationError


@click.group()
def cli() -> None:
    """Market data warehouse on Dagster and PostgreSQL/TimescaleDB."""


@cli.command()
def migrate() -> None:
    """Bring the warehouse schema to the latest revision (`alembic upgrade head`)."""
    from market_warehouse.resources.database import redact, warehouse_engine
    from market_warehouse.resources.schema import current_revision, upgrade

    engine = warehouse_engine()
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    state = "already at" if before == after else f"{before or 'empty'} ->"
    click.echo(f"migrated {redact(engine.url)}: {state} {after}")


@cli.group()
def db() -> None:
    """Inspect the warehouse database."""


@db.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def db_info(as_json: bool) -> None:
    """Backend, versions, capabilities and, per table, its kind, row estimate and size."""
    from market_warehouse.resources.database import redact, warehouse_engine
    from market_warehouse.resources.maintenance.stats import database_info, human_bytes

    engine = warehouse_engine()
    try:
        info = database_info(engine)
    finally:
        engine.dispose()
    caps = info.capabilities.as_dict()
    if as_json:
        payload = {
            "database": redact(engine.url),
            "schema_revision": info.schema_revision,
            "capabilities": caps,
            "tables": [vars(t) for t in info.tables],
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    click.echo(f"database:     {redact(engine.url)}")
    click.echo(f"backend:      {caps['backend']}  (PostgreSQL {caps['server_version']})")
    if caps["timescaledb_version"]:
        click.echo(f"timescaledb:  {caps['timescaledb_version']}  license={caps['timescaledb_license']}")
    click.echo(f"schema:       {info.schema_revision or 'not migrated (run: market-warehouse migrate)'}")
    flags = ("hypertables", "native_partitions", "compression", "continuous_aggregates")
    click.echo("capabilities: " + ", ".join(f"{f}={'yes' if caps[f] else 'no'}" for f in flags))
    if not info.tables:
        return
    click.echo(
        f"\n{'table':<24} {'kind':<20} {'rows~':>12} {'size':>10} {'pieces':>7} {'compr.':>7}  "
        f"{'oldest':<16}  {'newest':<16}"
    )
    for t in info.tables:
        ratio = f"{t.compression_ratio:.1f}x" if t.compression_ratio else ""
        oldest, newest = (f"{ts:%Y-%m-%d %H:%M}" if ts else "" for ts in (t.oldest, t.newest))
        click.echo(
            f"{t.table_name:<24} {t.kind:<20} {t.row_estimate:>12,} {human_bytes(t.total_bytes):>10} {t.pieces:>7} "
            f"{ratio:>7}  {oldest:<16}  {newest:<16}".rstrip()
        )


@cli.command()
@click.option("--days", default=3, show_default=True, type=click.IntRange(1, 60), help="Complete UTC days.")
@click.option("--history-days", default=7, show_default=True, type=click.IntRange(1, 365))
@click.option("--universe", type=click.Path(exists=True, dir_okay=False), help="Universe YAML (MW_UNIVERSE).")
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last UTC day of the window; the demo runs as if at 00:05 UTC the day after. [default: yesterday]",
)
@click.option("--quiet", is_flag=True, help="No per-step progress lines, only the summary.")
def demo(days: int, history_days: int, universe: str | None, end: datetime | None, quiet: bool) -> None:
    """Land sample files, materialize the whole graph for the last days offline, run maintenance, summarise."""
    from market_warehouse.pipelines.history import demo_window_days, record_demo_history_start

    end_day = end.date() if end else None
    try:
        # Before the code location is imported: its daily partitions start at the history start recorded here.
        record_demo_history_start(universe, demo_window_days(days, end_day)[0])
        from market_warehouse.pipelines.demo import DemoOptions, demo_window, run_demo

        demo_window(days, end_day)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--end") from None
    options = DemoOptions(days=days, history_days=history_days, universe=universe, end=end_day, quiet=quiet)
    if not run_demo(options, echo=click.echo).success:
        sys.exit(1)


@cli.group()
def maintenance() -> None:
    """Warehouse maintenance (the `nightly_maintenance` job's steps)."""


@maintenance.command("plan")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every entry).")
@click.option("--universe", type=click.Path(exists=True, dir_okay=False), help="Universe YAML (MW_UNIVERSE).")
def maintenance_plan(as_json: bool, universe: str | None) -> None:
    """What the next nightly_maintenance would create, refresh, compress and drop; changes nothing."""
    from market_warehouse.resources.database import redact, warehouse_engine
    from market_warehouse.resources.maintenance.plan import plan_maintenance
    from market_warehouse.resources.maintenance.policy import load_policy

    policy = load_policy(universe)
    engine = warehouse_engine()
    try:
        plan = plan_maintenance(engine, policy)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps({"database": redact(engine.url), **plan.as_dict()}, indent=2))
        return
    click.echo(f"database: {redact(engine.url)}")
    click.echo(plan.text())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def ui(host: str, port: int) -> None:
    """Start the Dagster UI (dagster dev) with run/event/schedule storage in PostgreSQL."""
    from market_warehouse.pipelines.cli.ui import run_ui

    sys.exit(run_ui(host, port, echo=click.echo))


cli.add_command(quarantine)
cli.add_command(archive)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(cold)
cli.add_command(load)
cli.add_command(stream)


def main() -> None:
    """Console-script entry point: configuration errors become one line and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
