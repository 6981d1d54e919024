"""`market-warehouse quarantine list|release` and `market-warehouse archive restore`.

Kept apart from `pipelines/cli/__init__.py` (which only registers these groups) so the data-quality commands live
with their domain. Nothing here imports Dagster: the commands start fast.
"""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterator

import click
import sqlalchemy as sa


def _who(by: str | None) -> str:
    return by or f"cli:{getpass.getuser()}"


@contextlib.contextmanager
def _warehouse() -> Iterator[sa.Engine]:
    """The warehouse engine for one command; a row or key that does not exist is a usage error, not a traceback."""
    from market_warehouse.resources.database import warehouse_engine

    engine = warehouse_engine()
    try:
        yield engine
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _parse_assignments(values: tuple[str, ...]) -> dict[str, object]:
    """`col=value` pairs; values parsed as JSON when they are JSON (numbers, null, true), else text."""
    out: dict[str, object] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected column=value, got {item!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


@click.group()
def quarantine() -> None:
    """Rows rejected by validation: list, correct and release them."""


@quarantine.command("list")
@click.option("--table", help="Only rows of this table.")
@click.option("--rule", help="Only rows rejected by this rule.")
@click.option("--run-id", help="Only rows quarantined by this run.")
@click.option("--partition", "partition_key", help="Only rows of this partition key.")
@click.option("--all", "include_released", is_flag=True, help="Include released rows.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def quarantine_list(table, rule, run_id, partition_key, include_released, limit, as_json) -> None:
    """Quarantined rows, newest first."""
    from market_warehouse.resources.quality.quarantine import list_quarantine

    with _warehouse() as engine, engine.connect() as conn:
        rows = list_quarantine(
            conn,
            table=table,
            rule=rule,
            run_id=run_id,
            partition_key=partition_key,
            include_released=include_released,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps([vars(r) for r in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("quarantine is empty" if not (table or rule or run_id) else "no matching rows")
        return
    click.echo(f"{'id':>8}  {'table':<20} {'rule':<26} {'partition':<12} message")
    for r in rows:
        state = " (released)" if r.released_at else ""
        click.echo(
            f"{r.id:>8}  {r.table_name:<20} {r.rule:<26} {r.partition_key or '':<12} "
            f"{(r.message or '')[:100]}{state}"
        )


@quarantine.command("release")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option(
    "--set", "assignments", multiple=True, help="Correct column=value before releasing (repeatable)."
)
@click.option("--by", help="Who releases (recorded as released_by_run and in audit_log); default cli:<user>.")
@click.option("--reason", default="released from quarantine", show_default=True)
def quarantine_release(
    ids: tuple[int, ...], assignments: tuple[str, ...], by: str | None, reason: str
) -> None:
    """Re-validate and upsert quarantined rows IDS (after applying --set corrections to each)."""
    from market_warehouse.resources.quality.quarantine import correct
    from market_warehouse.resources.warehouse.release import release

    who = _who(by)
    changes = _parse_assignments(assignments)
    with _warehouse() as engine:
        if changes:
            for qid in ids:
                correct(engine, qid, changes, changed_by=who, reason=reason)
        outcome = release(engine, ids, run_id=who, reason=reason)
    click.echo(
        f"released {len(outcome.released)} of {len(ids)} row(s): inserted {outcome.inserted}, "
        f"updated {outcome.updated}, unchanged {outcome.unchanged}"
    )
    for qid, message in sorted(outcome.still_failing.items()):
        click.echo(f"  still failing #{qid}: {message}")
    if outcome.still_failing:
        raise SystemExit(1)


@click.group()
def archive() -> None:
    """Rows replaced by upserts, kept in timeseries_archive."""


@archive.command("restore")
@click.argument("ids", nargs=-1, type=int)
@click.option("--table", help="With --key: restore the latest archived version of that row.")
@click.option("--key", "key_parts", multiple=True, help="Key column=value (repeatable), with --table.")
@click.option("--by", help="Who restores (audit_log changed_by); default cli:<user>.")
@click.option("--reason", default="restored from timeseries_archive", show_default=True)
def archive_restore(ids, table, key_parts, by, reason) -> None:
    """Write archived versions back (by archive IDS, or --table and --key)."""
    from market_warehouse.resources.warehouse.restore import restore

    if bool(ids) == bool(table):
        raise click.UsageError("give archive IDS, or --table with --key")
    key = _parse_assignments(key_parts) if table else None
    with _warehouse() as engine:
        result = restore(engine, ids or None, table=table, key=key, restored_by=_who(by), reason=reason)
    click.echo(
        f"restored {result.restored} archived row(s) {list(result.archive_ids)}: inserted {result.inserted}, "
        f"updated {result.updated}, unchanged {result.unchanged}"
    )
