"""The market-data assets through Dagster: partition ranges in one run, idempotent re-runs, snapshots, gaps."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.partitions import DAILY, WAREHOUSE_POOL
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.exchanges.client import fetch_ohlcv_range, ohlcv_frame
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from market_warehouse.resources.exchanges.universe import load_universe
from market_warehouse.resources.warehouse.load import load_frame
from tests.fixtures.exchanges.replay import BinanceReplay
from tests.universes import BINANCE_UNIVERSE, SYNTHETIC_UNIVERSE, universe_file

RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2024-03-01",
    "dagster/asset_partition_range_end": "2024-03-03",
}


def synthetic_resources(url, tmp_path) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE)),
    }


@pytest.fixture
def resources(db_url, tmp_path):
    return synthetic_resources(db_url, tmp_path)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()


def test_asset_definitions_follow_the_contract():
    specs = {key.to_user_string(): d for d in market_data.defs.assets for key in d.keys}
    for name in market_data.MARKET_DATA_ASSETS:
        asset = specs[name]
        assert asset.partitions_def == DAILY
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.op.pool == WAREHOUSE_POOL
        assert asset.op.retry_policy is None  # transient errors only, by `retry_transient` (test_retries)
        assert asset.group_names_by_key[asset.key] == "market_data"
        assert asset.code_versions_by_key[asset.key]
        assert "dagster/column_schema" in asset.metadata_by_key[asset.key]


def test_code_location_loads_with_jobs_and_schedules():
    from market_warehouse.pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("market_data_job")
    assert job.partitions_def == DAILY and defs.resolve_job_def("gap_backfill_job")
    assert {s.name for s in defs.schedules} >= {"daily_market_data", "intraday_market_data"}


@pytest.mark.slow
def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    root = Path(__file__).resolve().parents[1]
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_three_partitions_backfill_in_one_run_then_write_nothing(any_backend_url, tmp_path):
    resources = synthetic_resources(any_backend_url, tmp_path)
    first = dg.materialize([market_data.ohlcv], resources=resources, tags=RANGE_TAGS)

    events = {e.partition: e.materialization.metadata for e in first.get_asset_materialization_events()}
    assert sorted(events) == ["2024-03-01", "2024-03-02", "2024-03-03"]  # one run, three partitions
    for day, event in events.items():  # each partition carries its own day's counts, not the range's
        assert event["rows_inserted"].value == 24 and event["dagster/row_count"].value == 24
        assert event["rows_fetched"].value == 24 and event["rows_quarantined"].value == 0
        assert event["dagster/table_name"].value == "public.ohlcv"
        assert event["time_range"].value.startswith(f"{day}T00:00:00+00:00")
        assert event["window"].value.startswith(f"{day}T00:00:00+00:00")
    engine = resources["warehouse"].engine()
    assert count(engine, "ohlcv") == 72

    second = dg.materialize([market_data.ohlcv], resources=resources, tags=RANGE_TAGS)
    for event in second.get_asset_materialization_events():
        again = event.materialization.metadata
        assert again["ranges_requested"].value == 0 and again["requests"].value == 0  # coverage: nothing
        assert again["rows_inserted"].value == again["rows_updated"].value == 0
        assert again["dagster/row_count"].value == 24  # the stored rows of the day, not what the run wrote

    config = {"ops": {"ohlcv": {"config": {"refetch": True}}}}
    third = dg.materialize([market_data.ohlcv], resources=resources, tags=RANGE_TAGS, run_config=config)
    forced = third.get_asset_materialization_events()[0].materialization.metadata
    assert forced["rows_fetched"].value == 24 and forced["rows_unchanged"].value == 24
    assert forced["rows_inserted"].value == forced["rows_updated"].value == 0
    assert count(engine, "ohlcv") == 72


def test_every_market_data_asset_for_a_synthetic_day_is_consistent_and_idempotent(resources):
    assets = [
        market_data.ohlcv,
        market_data.market_trades,
        market_data.orderbook_snapshots,
        market_data.market_metrics,
        market_data.funding_rates,
        market_data.open_interest,
    ]
    result = dg.materialize(assets, resources=resources, partition_key="2024-03-02")
    engine = resources["warehouse"].engine()

    assert count(engine, "ohlcv") == 24
    with engine.connect() as conn:
        candle_trades = conn.execute(sa.text("select sum(trades_count) from ohlcv")).scalar_one()
    assert count(engine, "market_trades") == candle_trades  # the tape aggregates to the candles
    assert count(engine, "orderbook_snapshots") == 4 and count(engine, "market_metrics") == 4  # every 6h
    # Funding and open interest in their own tables (funding every 8h, open interest hourly), not in
    # timeseries_data; the spot pair and the perpetual of the funding series are both instruments.
    assert count(engine, "funding_rates") == 3 and count(engine, "open_interest") == 24
    assert count(engine, "timeseries_data") == 0 and count(engine, "instruments") == 2
    datasets = (
        "ohlcv",
        "market_trades",
        "orderbook_snapshots",
        "market_metrics",
        "funding_rates",
        "open_interest",
    )
    for asset in datasets:
        meta = metadata(result, asset)
        assert meta["rows_quarantined"] == 0, (asset, meta["quarantine_reasons"])
        assert meta["rows_inserted"] == meta["dagster/row_count"] > 0
        assert meta["source"] == "synthetic:5"

    again = dg.materialize(assets, resources=resources, partition_key="2024-03-02")
    for asset in datasets:
        meta = metadata(again, asset)
        assert meta["rows_inserted"] == meta["rows_updated"] == 0, asset


def test_ccxt_exchange_past_partition_loads_history_and_skips_snapshots(db_url, tmp_path, httpserver):
    replay = BinanceReplay(httpserver)
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(
            universe_path=universe_file(tmp_path, BINANCE_UNIVERSE),
            api_base_url=replay.base_url,
            backoff_base_seconds=0.0,
        ),
    }
    replay.fail_with["/api/v3/klines"] = [429]
    assets = [
        market_data.ohlcv,
        market_data.orderbook_snapshots,
        market_data.market_metrics,
        market_data.funding_rates,
        market_data.open_interest,
    ]

    result = dg.materialize(assets, resources=resources, partition_key="2024-03-02")

    candles = metadata(result, "ohlcv")
    assert (
        candles["rows_inserted"] == 19 and candles["rate_limited"] == 1
    )  # the 5-hour exchange gap stays empty
    assert candles["source"] == "ccxt:binance"
    book = metadata(result, "orderbook_snapshots")
    assert book["rows_fetched"] == 0 and "point-in-time" in book["notes"]
    assert replay.count("/api/v3/depth") == 0 and replay.count("/api/v3/ticker/24hr") == 0
    assert metadata(result, "funding_rates")["rows_inserted"] == 3  # the recorded funding times of the day
    assert metadata(result, "open_interest")["rows_inserted"] == 24  # hourly
    report = market_data.coverage_report
    gaps = dg.materialize(
        [report],
        resources=resources,
        run_config={"ops": {"coverage_report": {"config": {"start": "2024-03-02", "end": "2024-03-03"}}}},
    )
    meta = metadata(gaps, "coverage_report")
    assert meta["gaps"] == 0 and meta["answered_empty_candles"] == 5


def test_ccxt_exchange_current_partition_takes_the_snapshots(db_url, tmp_path, httpserver):
    replay = BinanceReplay(httpserver)
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(
            universe_path=universe_file(tmp_path, BINANCE_UNIVERSE), api_base_url=replay.base_url
        ),
    }
    today = datetime.now(UTC).date().isoformat()

    result = dg.materialize(
        [market_data.orderbook_snapshots, market_data.market_metrics],
        resources=resources,
        partition_key=today,
    )

    book = metadata(result, "orderbook_snapshots")
    assert book["rows_inserted"] == book["dagster/row_count"] == 1 and "notes" not in book
    assert replay.count("/api/v3/depth") == 1 and replay.count("/api/v3/ticker/24hr") == 1
    engine = resources["warehouse"].engine()
    with engine.connect() as conn:
        levels, interval = conn.execute(
            sa.text("select depth_levels, m.interval from orderbook_snapshots, market_metrics m")
        ).one()
    assert (levels, interval) == (5, "15m")  # top-N as configured; metrics on the snapshot_every grid


def test_gap_backfill_job_fills_exactly_the_holes(resources):
    engine = resources["warehouse"].engine()
    universe = load_universe(resources["exchanges"].universe_path)
    config = universe.exchange("synthetic")
    now = datetime.now(UTC)
    ex = SyntheticExchange(seed=config.seed, symbols=["BTC/USDT"], clock=lambda: now)
    start, end = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-03-03", tz="UTC")
    frame = ohlcv_frame(
        fetch_ohlcv_range(ex, "BTC/USDT", "1h", start, end, now=now), "synthetic", "BTC/USDT", "1h", "x"
    )
    holes = pd.to_datetime(["2024-03-01 05:00", "2024-03-02 23:00"], utc=True)
    load_frame(engine, "ohlcv", frame[~frame["time"].isin(holes)])

    result = market_data.gap_backfill_job.execute_in_process(
        resources=resources,
        run_config={"ops": {"find_gaps": {"config": {"start": "2024-03-01", "end": "2024-03-03"}}}},
    )

    found = result.output_for_node("find_gaps")
    assert found.gap_count == 2 and found.missing == 2
    materialized = sorted(e.partition for e in result.get_asset_materialization_events())
    assert materialized == ["2024-03-01", "2024-03-02"]
    assert count(engine, "ohlcv") == 48
    step = [e for e in result.all_node_events if e.step_key == "backfill_gaps" and e.is_successful_output][0]
    outputs = {k: v.value for k, v in step.event_specific_data.metadata.items()}
    assert (
        outputs["ranges_backfilled"] == 2 and outputs["rows_inserted"] == 2 and outputs["remaining_gaps"] == 0
    )


@pytest.mark.parametrize(
    ("schedule", "at", "partition"),
    [
        (market_data.daily_market_data, datetime(2024, 3, 5, 0, 15, tzinfo=UTC), "2024-03-04"),
        (market_data.intraday_market_data, datetime(2024, 3, 5, 13, 45, tzinfo=UTC), "2024-03-05"),
        (market_data.intraday_market_data, datetime(2024, 3, 5, 0, 0, tzinfo=UTC), "2024-03-05"),
    ],
)
def test_schedules_pick_the_right_partition(schedule, at, partition):
    assert schedule.execution_timezone == "UTC"
    request = schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert request.partition_key == partition
