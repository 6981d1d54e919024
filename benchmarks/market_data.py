"""Benchmark of a market-data backfill: one run for N daily partitions against N runs of one partition.

    python benchmarks/market_data.py                 # 14 days of the demo crypto series (1m + 1h, 2 symbols)
    python benchmarks/market_data.py --days 30

Three figures, each measured in this process, in this run, against a scratch database on the configured
server (embedded by default), dropped afterwards unless --keep:

- single run: `materialize(ohlcv)` over the partition range (`BackfillPolicy.single_run()`), as a UI backfill;
- baseline: the same days as one run per partition, in a second scratch database;
- re-run: the single run again — the coverage ledger leaves nothing to ask, nothing to write.

Also the pure fetch (synthetic candles through the ccxt pagination, no database) to show what loading adds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from psycopg2 import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market_warehouse.pipelines.defs import market_data  # noqa: E402
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource  # noqa: E402
from market_warehouse.resources.database import create_engine, drop_database, redact, server_url  # noqa: E402
from market_warehouse.resources.exchanges.client import fetch_ohlcv_range  # noqa: E402
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange  # noqa: E402
from market_warehouse.resources.schema import upgrade  # noqa: E402

UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 7
    symbols: [BTC/USDT, ETH/USDT]
    intervals: [1m, 1h]
"""
FIRST_DAY = pd.Timestamp("2024-02-01", tz="UTC")


def _scratch(admin_url: sa.URL) -> sa.URL:
    name = f"mw_bench_{uuid.uuid4().hex[:8]}"
    _admin(admin_url, pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    url = admin_url.set(database=name)
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def _admin(url: sa.URL, statement: pgsql.Composable) -> None:
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement.as_string(conn.connection.dbapi_connection))
    finally:
        engine.dispose()


def _resources(url: sa.URL, universe: Path) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=str(universe)),
    }


def _rows(url: sa.URL) -> int:
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from ohlcv")).scalar_one()
    finally:
        engine.dispose()


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    days = [(FIRST_DAY + pd.Timedelta(days=i)).strftime("%Y-%m-%d") for i in range(args.days)]
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="mw-bench-dagster-"))

    admin = server_url()
    print(f"server: {redact(admin)}; {args.days} days of 2 symbols × (1m + 1h) synthetic candles")
    with tempfile.TemporaryDirectory() as tmp:
        universe = Path(tmp) / "universe.yaml"
        universe.write_text(textwrap.dedent(UNIVERSE))

        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        ex = SyntheticExchange(seed=7, symbols=["BTC/USDT", "ETH/USDT"], clock=lambda: now)
        end = FIRST_DAY + pd.Timedelta(days=args.days)
        fetch_s, fetched = _timed(
            lambda: sum(
                len(fetch_ohlcv_range(ex, s, i, FIRST_DAY, end, now=now).frame)
                for s in ("BTC/USDT", "ETH/USDT")
                for i in ("1m", "1h")
            )
        )

        single_url, split_url = _scratch(admin), _scratch(admin)
        try:
            single_s, _ = _timed(
                lambda: dg.materialize(
                    [market_data.ohlcv], resources=_resources(single_url, universe), tags=tags
                )
            )
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows = _rows(single_url)
            rerun_s, _ = _timed(
                lambda: dg.materialize(
                    [market_data.ohlcv], resources=_resources(single_url, universe), tags=tags
                )
            )
            split_s, _ = _timed(
                lambda: [
                    dg.materialize(
                        [market_data.ohlcv], resources=_resources(split_url, universe), partition_key=day
                    )
                    for day in days
                ]
            )
            assert _rows(split_url) == rows == fetched, (rows, fetched)
        finally:
            if not args.keep:
                for url in (single_url, split_url):
                    drop_database(url)

    print(f"fetch only (no database):        {fetch_s:7.2f} s  {fetched / fetch_s:10,.0f} candles/s")
    print(f"single run, {args.days} partitions:      {single_s:7.2f} s  {rows / single_s:10,.0f} candles/s")
    print(f"baseline, {args.days} runs of 1 partition: {split_s:7.2f} s  {rows / split_s:10,.0f} candles/s")
    print(
        f"re-run of the single run:        {rerun_s:7.2f} s  (coverage ledger: nothing asked, nothing written)"
    )
    print(f"ratios: single/baseline {single_s / split_s:.2f}, re-run/single {rerun_s / single_s:.2f}, "
          f"fetch/single {fetch_s / single_s:.2f}; peak RSS {rss_mb:,.0f} MiB; {rows:,} candles")  # fmt: skip


if __name__ == "__main__":
    main()
