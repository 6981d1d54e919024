"""`market-warehouse demo` end to end on a fresh MW_HOME and database: every layer of the graph gets rows,
the bad file and rows are reported with their reasons, checks are reported, and a second run writes no
row (read from the tables' xmin, not from what the demo says about itself)."""

from __future__ import annotations

import os
import textwrap

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.demo import AGGREGATE_TABLES, DEMO_FOLDER, DemoOptions, run_demo
from market_warehouse.resources.database import create_engine
from market_warehouse.resources.models import Base

UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 3
    symbols: [BTC/USDT, ETH/USDT]
    intervals: [1m, 1h]
    orderbook_depth: 5
    snapshot_every: 4h
    metrics:
      - {metric: funding_rate, symbol: BTC/USDT:USDT}
"""
# Tables a re-run may touch: the retried broken file's ledger entry (its `loaded_at` / `run_id`).
BOOKKEEPING = {"ingest_files"}
# Filled by every demo run, whatever the backend.
FILLED = {
    "ohlcv",
    "market_trades",
    "orderbook_snapshots",
    "market_metrics",
    "funding_rates",
    "instruments",
    "coverage",
    "ingest_files",
    "quarantine",
    "features",
    "forecasts",
    "ml_models",
    "trading_signals",
    "backtest_results",
    "equity_curve",
    "risk_metrics",
    "lineage",
    "ohlcv_1h",
    "ohlcv_1d",
}


def _tables(conn: sa.Connection) -> list[sa.TableClause]:
    tables = [Base.metadata.tables[n] for n in sorted(Base.metadata.tables)]
    present = set(sa.inspect(conn).get_table_names()) | set(sa.inspect(conn).get_view_names())
    present |= set(sa.inspect(conn).get_materialized_view_names())
    return tables + [sa.table(n) for n in AGGREGATE_TABLES if n in present]


def _snapshot(conn: sa.Connection) -> dict[str, int]:
    return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in _tables(conn)}


def _written_since(conn: sa.Connection, xid: int) -> dict[str, int]:
    """Rows inserted or updated by transactions after `xid`, per table of the database (aggregate rollup
    tables and partitions included; xmin is the 32-bit part of the txid)."""
    newer = sa.literal_column("xmin::text::bigint") >= xid % 2**32
    counts = {
        name: conn.scalar(sa.select(sa.func.count()).select_from(sa.table(name)).where(newer))
        for name in sa.inspect(conn).get_table_names()
    }
    return {name: n for name, n in counts.items() if n}


@pytest.fixture
def demo_env(monkeypatch, safe_tmp, db_url):
    universe = safe_tmp / "universe.yaml"
    universe.write_text(textwrap.dedent(UNIVERSE))
    home = safe_tmp / "home"
    monkeypatch.setenv("MW_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    engine = create_engine(db_url)
    yield DemoOptions(days=2, history_days=3, universe=str(universe)), home, engine
    engine.dispose()


def test_demo_fills_the_graph_and_a_rerun_writes_nothing(demo_env):
    options, home, engine = demo_env
    lines: list[str] = []
    first = run_demo(options, echo=lines.append)
    output = "\n".join(lines)

    assert first.success, output
    assert first.files_written == 5 and first.files_unchanged == 0
    assert sorted(p.name for p in (home / "landing" / DEMO_FOLDER).rglob("*") if p.is_file()) == [
        "BTC_USDT-1h-klines.json",
        "BTC_USDT-1m.ndjson.gz",
        "BTC_USDT-4h-truncated.json",
        "ETH_USDT-1h-records.json",
        "ETH_USDT-1m-split.json",
    ]
    with engine.connect() as conn:
        counts = _snapshot(conn)
        layouts = dict(conn.execute(sa.text("select path, coalesce(layout, status) from ingest_files")).all())
    empty = sorted(t for t in FILLED if not counts.get(t))
    assert not empty, f"empty after the demo: {empty}\n{output}"
    # 2 symbols x (1440 + 24) candles a day, for 2 days, plus 3 days of hourly and 1 day of minute history
    # from the files, minus the three bad rows of the records file.
    assert counts["ohlcv"] == 2 * 2 * (1440 + 24) + 2 * (3 * 24 + 1440) - 3
    assert {layouts[p].split(":")[-1] for p in layouts if "truncated" not in p} >= {
        "binance-klines",
        "records",
        "split",
        "ndjson-records",
    }, layouts

    # The report: quarantine reasons with their file, the failed file, check results, backend, progress.
    rules = {rule for _, rule, _, _ in first.quarantine}
    assert {"non_numeric", "volume_non_negative"} <= rules, first.quarantine
    assert all(source.endswith("ETH_USDT-1h-records.json") for *_, source, _ in first.quarantine)
    assert [path for path, _ in first.failed_files] == [
        f"{DEMO_FOLDER}/exchange=synthetic/BTC_USDT-4h-truncated.json"
    ]
    assert "invalid JSON" in first.failed_files[0][1]
    checks = {(c.asset, c.name): c for c in first.checks}
    assert len(checks) >= 18
    assert checks[("ohlcv", "ohlcv_unique_key")].passed
    assert not checks[("historical_files", "historical_files_no_failed_files")].passed
    assert first.capabilities["backend"] == "postgres"
    assert first.rows_written["ohlcv"] > 0 and first.rows_written["features"] > 0
    for expected in ("done  ohlcv", "done  features", "done  risk_metrics", "done  collect_stats", "Summary"):
        assert expected in output, expected
    assert "invalid JSON" in output and "volume_non_negative" in output and "market-warehouse ui" in output
    assert "password" not in output.lower() and "DEBUG" not in output

    with engine.connect() as conn:
        xid = conn.scalar(sa.text("select txid_current()"))
    lines.clear()
    second = run_demo(options, echo=lines.append)
    assert second.success, "\n".join(lines)
    assert second.files_written == 0 and second.files_unchanged == 5
    assert second.total_written == 0, second.rows_written
    assert "derived assets: up to date" in "\n".join(lines)
    with engine.connect() as conn:
        assert _snapshot(conn) == counts
        written = _written_since(conn, xid)
    assert set(written) <= BOOKKEEPING, written
    assert written.get("ingest_files", 0) <= 1  # the broken file, retried and failing again
    assert second.seconds < first.seconds


WEEKEND_UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 3
    symbols: [BTC/USDT]
    intervals: [1m, 1h]
    orderbook_depth: 5
    snapshot_every: 6h
  synthetic_nyse:
    driver: synthetic
    seed: 11
    calendar: XNYS
    symbols: [SPY/USD]
    intervals: [1h, 1d]
    orderbook_depth: 5
    snapshot_every: 6h
"""


def test_demo_with_end_on_a_weekend_runs_as_of_the_day_after(demo_env, safe_tmp):
    """Issue 11: the demo failed whenever its window held a Saturday (the synthetic NYSE had no session
    minute to look up). With `--end` the window and the clock are fixed, whatever today is."""
    from datetime import date

    from market_warehouse.resources import clock

    _, _, engine = demo_env
    universe = safe_tmp / "weekend.yaml"
    universe.write_text(textwrap.dedent(WEEKEND_UNIVERSE))
    options = DemoOptions(days=2, history_days=1, universe=str(universe), end=date(2026, 11, 29), quiet=True)
    lines: list[str] = []
    report = run_demo(options, echo=lines.append)
    output = "\n".join(lines)

    assert report.success, output
    assert report.window == ("2026-11-28", "2026-11-29")
    assert "clock:     pinned at 2026-11-30 00:05 UTC" in output
    assert clock.ENV_VAR not in os.environ  # the pin ends with the demo
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.text(
                    "select exchange || ' ' || interval, count(*) from ohlcv "
                    "where time >= '2026-11-28' group by 1"
                )
            ).all()
        )
        latest = conn.execute(sa.text("select max(time) from ohlcv")).scalar_one()
        nyse_trades = conn.execute(
            sa.text("select count(*) from market_trades where exchange = 'synthetic_nyse'")
        ).scalar_one()
        nyse_books = conn.execute(
            sa.text("select count(*) from orderbook_snapshots where exchange = 'synthetic_nyse'")
        ).scalar_one()
    # A weekend: the crypto exchange has every candle, the NYSE none (and no trade), as of Monday 00:05.
    assert rows == {"synthetic 1m": 2 * 1440, "synthetic 1h": 2 * 24}
    assert latest == pd.Timestamp("2026-11-29 23:59", tz="UTC")
    assert nyse_trades == 0 and nyse_books == 2 * 4  # quotes still shown (Friday's close), every 6 h
