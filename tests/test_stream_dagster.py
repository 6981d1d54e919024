"""Dagster observes the live capture: the `live_capture` observation reports each stream's heartbeat and holes,
and `live_capture_fresh` fails when a running stream has committed nothing for longer than its limit.
Also `market-warehouse stream --status` on the same tables."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from dagster._core.definitions.observe import observe

from market_warehouse.pipelines.cli import cli
from market_warehouse.resources import clock
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.models import CaptureGap
from market_warehouse.resources.stream.ledger import Heartbeat, write_heartbeats

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UNIVERSE = """
exchanges:
  binance:
    driver: binance
    symbols: [BTC/USDT]
    intervals: [1h]
    stream:
      channels: [trades]
      stale_after_s: 60
"""


def beat(channel: str, committed_ago: float, status: str = "running") -> Heartbeat:
    committed = NOW - timedelta(seconds=committed_ago)
    return Heartbeat(
        exchange="binance",
        symbol="BTC/USDT",
        channel=channel,
        status=status,
        last_exchange_time=committed - timedelta(milliseconds=150),
        last_arrival_time=committed - timedelta(milliseconds=20),
        last_commit_time=committed,
        rows_total=1000,
        rows_last_minute=120,
        lag_p50_ms=140.0,
        lag_p99_ms=480.0,
        reconnects=1,
        started_at=NOW - timedelta(hours=1),
    )


@pytest.fixture
def resources(db_url, tmp_path):
    universe = tmp_path / "universe.yaml"
    universe.write_text(UNIVERSE)
    return {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=str(universe)),
    }


def run_check(resources) -> dg.AssetCheckResult:
    from market_warehouse.pipelines.defs.stream import live_capture_fresh

    return live_capture_fresh(warehouse=resources["warehouse"], exchanges=resources["exchanges"])


def test_fresh_streams_pass_and_a_stale_one_fails(engine, resources):
    with engine.begin() as conn:
        write_heartbeats(conn, [beat("trades", 5), beat("ohlcv", 30)])
    with clock.frozen(NOW):
        assert run_check(resources).passed
        with engine.begin() as conn:
            write_heartbeats(conn, [beat("trades", 600)])  # heartbeats never move back in time...
        assert run_check(resources).passed
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE stream_state SET last_commit_time = :t WHERE channel = 'trades'"),
                {"t": NOW - timedelta(seconds=600)},
            )
        failed = run_check(resources)
    assert not failed.passed
    assert failed.description == "stale: binance BTC/USDT trades"
    assert failed.metadata["stale"].value == 1


def test_a_stopped_stream_is_not_stale(engine, resources):
    with engine.begin() as conn:
        write_heartbeats(conn, [beat("trades", 3600, status="stopped")])
    with clock.frozen(NOW):
        assert run_check(resources).passed


def test_observation_reports_lag_rows_and_open_holes(engine, resources):
    from market_warehouse.pipelines.defs.stream import live_capture

    with engine.begin() as conn:
        write_heartbeats(conn, [beat("trades", 2)])
        conn.execute(
            sa.insert(CaptureGap).values(
                exchange="binance", symbol="BTC/USDT", channel="trades", reason="disconnect", gap_start=NOW
            )
        )
    with clock.frozen(NOW), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = observe([live_capture], resources=resources)
    (event,) = result.asset_observations_for_node(result.all_node_events[0].node_name) or [None]
    metadata = event.metadata
    assert metadata["open_gaps"].value == 1
    assert metadata["rows_per_min"].value == 120
    (row,) = metadata["streams"].value
    assert row["stream"] == "binance BTC/USDT trades"
    assert row["lag_s"] == round(2.15, 1)  # now - newest committed exchange time, in seconds
    assert (row["lag_p50_ms"], row["lag_p99_ms"], row["open_gaps"]) == (140.0, 480.0, 1)


def test_status_command_prints_each_stream(engine, db_url, resources, monkeypatch):
    with engine.begin() as conn:
        write_heartbeats(conn, [beat("trades", 2), beat("ohlcv", 600)])
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    monkeypatch.setenv("MW_NOW", NOW.isoformat())
    result = CliRunner().invoke(
        cli, ["stream", "--status", "--universe", resources["exchanges"].universe_path]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["exchange", "symbol", "channel", "state"]
    ohlcv, trades = lines[1].split(), lines[2].split()
    assert ohlcv[:4] == ["binance", "BTC/USDT", "ohlcv", "STALE"]
    assert trades[:4] == ["binance", "BTC/USDT", "trades", "running"]
    assert trades[4] == "2.1" and trades[5] == "120"
