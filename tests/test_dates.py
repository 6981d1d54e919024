"""Time is an input: the project clock (`resources.clock`), and the market-data and derived assets run
with it pinned over the dates that break naive code: a weekend, Thanksgiving and its half day, both DST
changes, a year end and a leap day, on a 24/7 and an XNYS synthetic exchange. Rows are checked against
the XNYS schedule read straight from exchange_calendars."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.defs.derived import DERIVED_ASSETS, AnalyticsResource
from market_warehouse.pipelines.partitions import DAILY, partitions_at_clock
from market_warehouse.resources import clock
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from tests.sessions import DAY_MS, HOUR_MS, Sessions, expected_lefts

# --- the clock ----------------------------------------------------------------------------------------------


def test_unpinned_clock_is_the_system_clock_in_utc(monkeypatch):
    monkeypatch.delenv(clock.ENV_VAR, raising=False)
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
    assert not clock.is_pinned()


def test_frozen_pins_this_process_its_threads_and_its_subprocesses(monkeypatch):
    monkeypatch.delenv(clock.ENV_VAR, raising=False)
    at = datetime(2026, 11, 29, 23, 59, 59, 999_000, tzinfo=timezone(timedelta(hours=-5)))  # Sunday in ET
    seen: list[datetime] = []
    with clock.frozen(at) as pinned:
        assert pinned == clock.now() == datetime(2026, 11, 30, 4, 59, 59, 999_000, tzinfo=UTC)
        assert clock.today() == date(2026, 11, 30)  # the UTC day, not the zone's
        thread = threading.Thread(target=lambda: seen.append(clock.now()))
        thread.start()
        thread.join()
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "from market_warehouse.resources import clock; print(clock.now().isoformat())",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )
        assert os.environ[clock.ENV_VAR] == "2026-11-30T04:59:59.999000Z"
    assert seen == [pinned]
    assert child.stdout.strip() == "2026-11-30T04:59:59.999000+00:00"
    assert clock.ENV_VAR not in os.environ and not clock.is_pinned()  # restored


def test_nested_clocks_and_the_environment_variable(monkeypatch):
    monkeypatch.setenv(clock.ENV_VAR, "2028-02-29T12:00:00+01:00")
    assert clock.now() == datetime(2028, 2, 29, 11, tzinfo=UTC) and clock.is_pinned()
    ticks = iter(range(100))
    with clock.use_clock(lambda: datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=next(ticks))):
        assert clock.now() < clock.now()  # an installed clock may move
        with clock.frozen("2027-01-01T00:00:00Z"):
            assert clock.now() == datetime(2027, 1, 1, tzinfo=UTC)
        assert clock.now().year == 2030
    assert clock.now() == datetime(2028, 2, 29, 11, tzinfo=UTC)
    assert os.environ[clock.ENV_VAR] == "2028-02-29T12:00:00+01:00"


@pytest.mark.parametrize("bad", ["2026-11-30", "2026-11-30T00:05:00", "yesterday"])
def test_naive_or_unreadable_times_are_refused(monkeypatch, bad):
    monkeypatch.setenv(clock.ENV_VAR, bad)
    with pytest.raises(ValueError, match=clock.ENV_VAR):
        clock.now()
    monkeypatch.delenv(clock.ENV_VAR)
    with pytest.raises(ValueError), clock.frozen(bad):
        pass
    with pytest.raises(ValueError), clock.frozen(datetime(2026, 11, 30)):
        pass


def test_dagster_partitions_end_at_the_pinned_clock():
    with clock.frozen(datetime(2028, 3, 1, 0, 5, tzinfo=UTC)), partitions_at_clock():
        assert DAILY.get_last_partition_key() == "2028-03-01"  # end_offset=1: the current day is a key
        assert "2028-02-29" in DAILY.get_partition_keys()
    with clock.frozen(datetime(2024, 3, 1, 0, 5, tzinfo=UTC)), partitions_at_clock():
        assert DAILY.get_last_partition_key() == "2024-03-01"


# --- the assets over awkward windows ----------------------------------------------------------------------

UNIVERSE = """
exchanges:
  crypto:
    driver: synthetic
    seed: 5
    calendar: 24/7
    symbols: [BTC/USDT]
    intervals: [1h]
    orderbook_depth: 3
    snapshot_every: 6h
    metrics:
      - {metric: funding_rate, symbol: BTC/USDT:USDT}
      - {metric: open_interest, symbol: BTC/USDT:USDT, interval: 1h}
  nyse:
    driver: synthetic
    seed: 11
    calendar: XNYS
    symbols: [SPY/USD]
    intervals: [1h, 1d]
    orderbook_depth: 3
    snapshot_every: 6h
"""
ANALYTICS = AnalyticsResource(
    forecast_intervals=["1h"],
    forecast_models=["naive"],
    forecast_horizon=6,
    forecast_training_bars=48,
    strategy_inception="2024-01-01",
    fast=3,
    slow=8,
)
MARKET_DATA = [
    market_data.ohlcv,
    market_data.market_trades,
    market_data.orderbook_snapshots,
    market_data.market_metrics,
    market_data.funding_rates,
    market_data.open_interest,
]
WINDOWS = {
    # Thanksgiving (closed), its half day (13:00 ET = 18:00 UTC close), then a weekend.
    "thanksgiving-weekend": ("2026-11-26", "2026-11-29"),
    # US DST starts Sunday 2026-03-08: Friday's session is 14:30-21:00 UTC, Monday's 13:30-20:00.
    "dst-start": ("2026-03-06", "2026-03-09"),
    # US DST ends Sunday 2026-11-01: back from 13:30 to 14:30 UTC.
    "dst-end": ("2026-10-30", "2026-11-02"),
    # Month and year end; New Year's Day is an NYSE holiday.
    "year-end": ("2026-12-31", "2027-01-01"),
    # A leap day (a Tuesday), on a machine whose date is years before it.
    "leap-day": ("2028-02-28", "2028-03-01"),
}
SESSIONS = Sessions("2026-01-01", "2028-12-31")


def _day_ms(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").value // 1_000_000)


def _times(conn, sql: str, **params) -> list[int]:
    return [int(pd.Timestamp(t).value // 1_000_000) for (t,) in conn.execute(sa.text(sql), params)]


@pytest.fixture
def windowed(db_url, tmp_path):
    path = tmp_path / "universe.yaml"
    path.write_text(textwrap.dedent(UNIVERSE))
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=str(path)),
        "analytics": ANALYTICS,
    }
    yield resources
    resources["warehouse"].engine().dispose()


@pytest.mark.parametrize("name", list(WINDOWS))
def test_market_data_and_derived_assets_over_awkward_dates(windowed, name):
    first, last = WINDOWS[name]
    start_ms, end_ms = _day_ms(first), _day_ms(last) + DAY_MS
    at = pd.Timestamp(end_ms + 5 * 60_000, unit="ms", tz="UTC").to_pydatetime()  # 00:05 the day after
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    with clock.frozen(at), partitions_at_clock():
        result = dg.materialize(
            [*MARKET_DATA, *DERIVED_ASSETS],
            resources=windowed,
            tags=tags,
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert result.success and not failures, failures
    days = len(pd.date_range(first, last))
    materialized = {
        (e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()
    }
    for asset in ["ohlcv", "market_trades", "features", "risk_metrics"]:
        assert {p for a, p in materialized if a == asset} == {
            d.strftime("%Y-%m-%d") for d in pd.date_range(first, last)
        }, asset

    engine = windowed["warehouse"].engine()
    with engine.connect() as conn:
        query = (
            "select time from ohlcv where exchange = :ex and interval = :iv and time >= :a and time < :b "
            "order by time"
        )
        window = {
            "a": pd.Timestamp(start_ms, unit="ms", tz="UTC"),
            "b": pd.Timestamp(end_ms, unit="ms", tz="UTC"),
        }
        crypto_hours = _times(conn, query, ex="crypto", iv="1h", **window)
        nyse_hours = _times(conn, query, ex="nyse", iv="1h", **window)
        nyse_days = _times(conn, query, ex="nyse", iv="1d", **window)
        nyse_trades = np.array(
            _times(conn, "select time from market_trades where exchange = 'nyse' order by time"),
            dtype=np.int64,
        )
        consistent = conn.execute(
            sa.text(
                "select exchange, (select count(*) from market_trades t where t.exchange = o.exchange), "
                "sum(trades_count) from ohlcv o where interval = '1h' group by exchange"
            )
        ).all()
        derived = {
            table: conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
            for table in ("features", "trading_signals", "equity_curve", "risk_metrics", "quarantine")
        }

    # 24/7: every hour; XNYS: exactly the grid hours overlapping a session, its sessions as daily candles.
    assert crypto_hours == expected_lefts("24/7", SESSIONS, HOUR_MS, start_ms, end_ms - 1)
    assert len(crypto_hours) == 24 * days
    assert nyse_hours == expected_lefts("XNYS", SESSIONS, HOUR_MS, start_ms, end_ms - 1)
    assert nyse_days == [d for d in range(start_ms, end_ms, DAY_MS) if _session_day(d)]
    assert SESSIONS.holding(nyse_trades).all() and len(nyse_trades) > 0
    for exchange, trades, candle_trades in consistent:  # the tape aggregates to the candles
        assert trades == candle_trades, exchange
    assert derived["features"] >= len(crypto_hours) + len(nyse_hours) - 2 * 30  # warm-up rows may lack values
    assert derived["risk_metrics"] > 0 and derived["equity_curve"] > 0
    assert derived["quarantine"] == 0
    _check_window_specifics(name, nyse_hours, nyse_days)


def _session_day(day_ms: int) -> bool:
    return pd.Timestamp(day_ms, unit="ms").date() in SESSIONS.dates


def _hours_by_day(times: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t in times:
        stamp = pd.Timestamp(t, unit="ms")
        out.setdefault(stamp.strftime("%Y-%m-%d"), []).append(stamp.hour)
    return out


def _check_window_specifics(name: str, nyse_hours: list[int], nyse_days: list[int]) -> None:
    """What a reader of the calendar expects, written out: the independent schedule above agrees."""
    hours = _hours_by_day(nyse_hours)
    full_winter, full_summer = list(range(14, 21)), list(range(13, 20))  # 14:30-21:00 / 13:30-20:00 UTC
    expected = {
        "thanksgiving-weekend": {"2026-11-27": [14, 15, 16, 17]},  # half day, closes 18:00 UTC
        "dst-start": {"2026-03-06": full_winter, "2026-03-09": full_summer},
        "dst-end": {"2026-10-30": full_summer, "2026-11-02": full_winter},
        "year-end": {"2026-12-31": full_winter},
        "leap-day": {"2028-02-28": full_winter, "2028-02-29": full_winter, "2028-03-01": full_winter},
    }[name]
    assert hours == expected
    assert [pd.Timestamp(d, unit="ms").strftime("%Y-%m-%d") for d in nyse_days] == sorted(expected)
