"""`market-warehouse stream`: the live capture service (issue 15), and `--status` to see how it does.

The service is not a Dagster run: it runs on its own (systemd, a container) and Dagster observes it
through the tables it writes (`pipelines/defs/stream`). The work is in `resources.stream`.
"""

from __future__ import annotations

import json
import logging

import click


@click.command()
@click.option("--status", "show_status", is_flag=True, help="Print each stream's state and exit.")
@click.option("--universe", type=click.Path(exists=True, dir_okay=False), help="Universe YAML (MW_UNIVERSE).")
@click.option("--exchange", help="Only this exchange (default: every exchange with a `stream:` section).")
@click.option("--json", "as_json", is_flag=True, help="With --status: machine-readable output.")
def stream(show_status: bool, universe: str | None, exchange: str | None, as_json: bool) -> None:
    """Capture the universe's websocket streams into the warehouse until SIGTERM (which flushes)."""
    from market_warehouse.resources.database import redact, warehouse_engine
    from market_warehouse.resources.exchanges.universe import load_universe
    from market_warehouse.resources.stream.config import stream_configs

    configs = stream_configs(load_universe(universe), exchange)
    engine = warehouse_engine()
    try:
        if show_status:
            _print_status(engine, exchange, configs, as_json)
            return
        if not configs:
            raise click.ClickException("no exchange of the universe has a `stream:` section")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        click.echo(f"stream: writing to {redact(engine.url)}")
        from market_warehouse.resources.stream.run import serve

        stats = serve(configs, engine)
        rows = sum(s.rows for s in stats)
        click.echo(f"stream: stopped after {rows} rows ({sum(s.quarantined for s in stats)} quarantined)")
    finally:
        engine.dispose()


def _print_status(engine, exchange: str | None, configs, as_json: bool) -> None:
    from market_warehouse.resources.stream.ledger import stream_status

    stale_after = {c.name: c.stale_after_s for c in configs}
    with engine.connect() as conn:
        states = stream_status(conn, exchange)
    rows = [{**vars(s), "stale": s.stale(stale_after.get(s.exchange, 120.0))} for s in states]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no stream has run yet")
        return
    click.echo(
        f"{'exchange':<12} {'symbol':<16} {'channel':<10} {'state':<12} {'lag s':>9} {'rows/min':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'reconn.':>7} {'open':>5} {'unfilled':>8}"
    )
    for r in rows:
        state = "STALE" if r["stale"] else r["status"]
        lag = "" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}"
        p50 = "" if r["lag_p50_ms"] is None else f"{r['lag_p50_ms']:.0f}"
        p99 = "" if r["lag_p99_ms"] is None else f"{r['lag_p99_ms']:.0f}"
        click.echo(
            f"{r['exchange']:<12} {r['symbol']:<16} {r['channel']:<10} {state:<12} {lag:>9} "
            f"{r['rows_last_minute']:>9} {p50:>8} {p99:>8} {r['reconnects']:>7} {r['open_gaps']:>5} "
            f"{r['unfilled_gaps']:>8}"
        )
