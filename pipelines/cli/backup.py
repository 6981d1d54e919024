"""`market-warehouse backup` / `restore`: the warehouse and Dagster's instance database, with a manifest.

Which databases: the configured warehouse (`DATABASE_URL` or the embedded server) and Dagster's storage
(`MW_DAGSTER_PG_URL`, else the `dagster` database on the warehouse server). The work is in
`resources.backup`; this module resolves URLs and prints results (URLs always redacted).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

WAREHOUSE, DAGSTER = "warehouse", "dagster"


def _sources() -> dict[str, URL]:
    from market_warehouse.pipelines.instance import instance_storage_url
    from market_warehouse.resources.database import warehouse_url

    return {WAREHOUSE: warehouse_url(), DAGSTER: instance_storage_url()}


def _targets(target_url: str | None, dagster_url: str | None, with_dagster: bool) -> dict[str, URL]:
    """The configured databases, or `--target-url` and (unless given) `<its database>_dagster` beside it."""
    from market_warehouse.resources.database import normalize_url

    if target_url is None:
        targets = _sources()
    else:
        warehouse = normalize_url(target_url)
        targets = {WAREHOUSE: warehouse, DAGSTER: warehouse.set(database=f"{warehouse.database}_dagster")}
    if dagster_url:
        targets[DAGSTER] = normalize_url(dagster_url)
    if not with_dagster:
        targets.pop(DAGSTER)
    return targets


def _default_folder() -> Path:
    from market_warehouse.resources.clock import now
    from market_warehouse.resources.settings import load_settings

    return load_settings().home / "backups" / now().strftime("%Y%m%dT%H%M%SZ")


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), help="Parallel pg_dump jobs. [default: cores, at most 4]"
)
def backup(folder: Path | None, jobs: int | None) -> None:
    """Dump the warehouse and Dagster's database (pg_dump -Fd) into FOLDER with a manifest.json.

    FOLDER must be new or empty [default: $MW_HOME/backups/<UTC time>].
    """
    from market_warehouse.resources.backup import MANIFEST, BackupError, default_jobs
    from market_warehouse.resources.backup import backup as run_backup
    from market_warehouse.resources.maintenance.stats import human_bytes

    folder = folder or _default_folder()
    try:
        done = run_backup(_sources(), folder, jobs or default_jobs())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for d in done:
        state = d.state
        tsdb = (
            f", TimescaleDB {state.timescaledb_version} ({state.timescaledb_license})"
            if state.timescaledb_version
            else ""
        )
        click.echo(
            f"{d.role:<10} {d.source}: PostgreSQL {d.state.server_version}{tsdb}, schema {d.state.schema_revision}, "
            f"{len(d.state.tables)} tables, {d.state.total_rows:,} rows, {human_bytes(d.bytes)} in {d.seconds:.1f} s"
        )
    click.echo(f"backup written: {folder} ({MANIFEST} last)")


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target-url", help="Warehouse database to restore into [default: the configured one].")
@click.option("--dagster-url", help="Database for Dagster's storage [default: <target database>_dagster].")
@click.option("--no-dagster", is_flag=True, help="Restore the warehouse only.")
@click.option("--force", is_flag=True, help="Drop and re-create a target that is not empty.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), help="Parallel pg_restore jobs.")
def restore(
    folder: Path,
    target_url: str | None,
    dagster_url: str | None,
    no_dagster: bool,
    force: bool,
    jobs: int | None,
) -> None:
    """Restore a backup into empty databases, then verify rows and checksums against its manifest.

    Exit code 1 when a restored table differs from the manifest; 2 when a target is refused.
    """
    from market_warehouse.resources.backup import BackupError, default_jobs
    from market_warehouse.resources.backup import restore as run_restore

    targets = _targets(target_url, dagster_url, not no_dagster)
    try:
        results = run_restore(folder, targets, force, jobs or default_jobs())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for r in results:
        status = "verified" if r.verified else f"{len(r.problems)} DIFFERENCES"
        click.echo(
            f"{r.role:<10} {r.target}: restored in {r.seconds:.1f} s; {len(r.state.tables)} tables, "
            f"{r.state.total_rows:,} rows: {status}"
        )
        for problem in r.problems:
            click.echo(f"  - {problem}")
    if not all(r.verified for r in results):
        sys.exit(1)
