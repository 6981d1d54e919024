"""What the Dagster UI shows after the quick start (issue 12, point 4), read through the GraphQL the UI
queries: the demo's days are the filled partitions of every asset, whatever the date.

`market-warehouse demo` runs as a user runs it (the command, a new `MW_HOME`, no `MW_HISTORY_START`, no
`MW_UNIVERSE`: the shipped universe), with the clock pinned to a day on which the old default history start
(2026-01-01) refused the quick start's window: 2026-01-02, so the window is 2025-12-30 .. 2026-01-01
(a year end). The UI's view is read in a new process, as `market-warehouse ui` starts one, at the same
instant (the UI opened right after the demo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from market_warehouse.pipelines.history import (
    DEFAULT_HISTORY_START,
    DEMO_HISTORY_FILE,
    HISTORY_START_ENV,
    demo_window_days,
    history_start,
    record_demo_history_start,
)
from market_warehouse.resources import clock
from market_warehouse.resources.universe_file import UNIVERSE_ENV
from tests.universes import SYNTHETIC_UNIVERSE, universe_file

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOW = "2026-01-02T00:05:00Z"  # the quick start run 5 minutes into 2026-01-02
WINDOW = ["2025-12-30", "2025-12-31", "2026-01-01"]

STATUS_QUERY = """
{
  assetNodes {
    assetKey { path }
    isPartitioned
    isMaterializable
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetPartitionStatuses {
      ... on TimePartitionStatuses { ranges { status startKey endKey } }
    }
  }
}
"""

# A new process, as `market-warehouse ui` starts its code location: the partitions it sees, and the
# statuses the UI shows, at the pinned instant (Dagster's partitions end at the project's clock).
UI_VIEW = """
import json
from market_warehouse.pipelines.demo import project_instance
from market_warehouse.pipelines.partitions import DAILY, partitions_at_clock
from market_warehouse.resources.settings import load_settings
from tests.ui_data import graphql

with partitions_at_clock(), project_instance(load_settings()) as instance:
    keys = DAILY.get_partition_keys()
    data = graphql(instance, QUERY)
print(json.dumps({"keys": keys, "nodes": data["assetNodes"]}))
"""


def user_environment(home: Path, **extra: str) -> dict[str, str]:
    """A user's shell: no history start, no universe, no pinned clock unless given."""
    unset = (HISTORY_START_ENV, UNIVERSE_ENV, clock.ENV_VAR, "DAGSTER_HOME")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return {**env, "MW_HOME": str(home), **extra}


def ui_view(env: dict[str, str]) -> dict:
    script = UI_VIEW.replace("QUERY", repr(STATUS_QUERY))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def days_of(ranges: list[dict], status: str) -> list[str]:
    """The days of the status's ranges."""
    out = []
    for r in (r for r in ranges if r["status"] == status):
        day, end = date.fromisoformat(r["startKey"]), date.fromisoformat(r["endKey"])
        while day <= end:
            out.append(day.isoformat())
            day += timedelta(days=1)
    return out


def test_the_quick_start_fills_the_partitions_the_ui_shows(safe_tmp, db_url, empty_url):
    home = safe_tmp / "home"
    env = user_environment(
        home,
        DATABASE_URL=db_url.render_as_string(hide_password=False),
        MW_DAGSTER_PG_URL=empty_url.render_as_string(hide_password=False),
        **{clock.ENV_VAR: NOW},
    )
    demo = subprocess.run(
        [str(BIN / "market-warehouse"), "demo", "--quiet"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert f"window {WINDOW[0]} .. {WINDOW[-1]}" in demo.stdout
    assert (
        f"the daily partitions (`market-warehouse ui`) start {WINDOW[0]}: the demo's first day" in demo.stdout
    )

    view = ui_view(env)
    # The partitions start with the window and end with the pinned day (Dagster's end_offset=1: the day
    # in progress is a key); nothing of the eleven months before.
    assert view["keys"] == [*WINDOW, "2026-01-02"]
    partitioned = [n for n in view["nodes"] if n["isPartitioned"] and n["isMaterializable"]]
    assert len(partitioned) >= 12
    for node in partitioned:
        name = "/".join(node["assetKey"]["path"])
        ranges = node["assetPartitionStatuses"]["ranges"]
        # Every day of the window materialized; missing: only the day in progress (the demo leaves it
        # alone: its candles are not closed); nothing failed or running.
        assert days_of(ranges, "MATERIALIZED") == WINDOW, (name, ranges)
        assert {r["status"] for r in ranges} == {"MATERIALIZED"}, (name, ranges)
        assert node["partitionStats"] == {
            "numMaterialized": 3,
            "numPartitions": 4,
            "numFailed": 0,
            "numMaterializing": 0,
        }, name

    # A user's own universe without `history_start`, in the same home: the default start, not the demo's.
    own = universe_file(safe_tmp, SYNTHETIC_UNIVERSE)
    other = ui_view({**env, UNIVERSE_ENV: own})
    assert other["keys"][0] == DEFAULT_HISTORY_START


UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    symbols: [BTC/USDT]
    intervals: [1h]
"""


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# Year ends, a leap day, weekends, month ends: every day of 2025-12-25 .. 2029-01-05.
QUICK_START_DAYS = _days(date(2025, 12, 25), date(2029, 1, 5))


def test_the_demo_window_is_the_history_start_on_every_day(monkeypatch, safe_tmp):
    """On every day, the quick start's window (the 3 days before today) starts the demo home's history,
    so it is never refused and always the first partitions; an earlier window moves the start back, a
    later one does not; a start the user set wins and is not recorded over."""
    monkeypatch.delenv(HISTORY_START_ENV, raising=False)
    monkeypatch.setenv("MW_HOME", str(safe_tmp / "home"))
    universe = safe_tmp / "universe.yaml"
    universe.write_text(textwrap.dedent(UNIVERSE))
    assert date(2028, 2, 29) in QUICK_START_DAYS
    for today in QUICK_START_DAYS:
        (safe_tmp / "home" / DEMO_HISTORY_FILE).unlink(missing_ok=True)
        with clock.frozen(datetime(today.year, today.month, today.day, 0, 5, tzinfo=UTC)):
            first, last = demo_window_days(3)
            start, source = record_demo_history_start(str(universe), first)
        assert (first, last) == (today - timedelta(days=3), today - timedelta(days=1)), today
        assert start == first == history_start(str(universe)), today
        assert "the demo's first day" in source

    record_demo_history_start(str(universe), date(2026, 3, 1))
    assert history_start(str(universe)) == date(2026, 3, 1)
    record_demo_history_start(str(universe), date(2026, 2, 1))  # an earlier window: the start moves back
    record_demo_history_start(str(universe), date(2026, 5, 1))  # a later one: it stays
    assert history_start(str(universe)) == date(2026, 2, 1)
    recorded = json.loads((safe_tmp / "home" / DEMO_HISTORY_FILE).read_text())
    assert recorded == {str(universe.resolve()): "2026-02-01"}

    stated = safe_tmp / "stated.yaml"
    stated.write_text(textwrap.dedent(UNIVERSE) + "history_start: 2025-06-15\n")
    assert record_demo_history_start(str(stated), date(2026, 5, 1)) == (
        date(2025, 6, 15),
        f"{stated.resolve()}: history_start",
    )
    monkeypatch.setenv(HISTORY_START_ENV, "2025-07-01")
    assert record_demo_history_start(str(universe), date(2024, 5, 1))[0] == date(2025, 7, 1)
    assert json.loads((safe_tmp / "home" / DEMO_HISTORY_FILE).read_text()) == recorded  # untouched


@pytest.mark.parametrize("content", ["{not json", '["2026-01-01"]'])
def test_a_broken_record_names_its_file(monkeypatch, safe_tmp, content):
    from market_warehouse.resources.settings import ConfigurationError

    monkeypatch.delenv(HISTORY_START_ENV, raising=False)
    monkeypatch.setenv("MW_HOME", str(safe_tmp))
    universe = safe_tmp / "universe.yaml"
    universe.write_text(textwrap.dedent(UNIVERSE))
    (safe_tmp / DEMO_HISTORY_FILE).write_text(content)
    with pytest.raises(ConfigurationError, match=DEMO_HISTORY_FILE):
        history_start(str(universe))
