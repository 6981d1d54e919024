"""What the Dagster UI shows, read through the GraphQL API the UI itself queries (issue 12).

Runs are launched in process against a real Dagster instance (SQLite storage in a temporary folder) as the
single-run backfill of a partition range launches them: one run tagged with the range. The UI's view is
then read with dagster-graphql's `execute_dagster_graphql` over an in-process workspace of the real code
location (`pipelines.definitions:defs`), as dagster-graphql's own tests do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.defs.derived import AnalyticsResource, features_asset
from market_warehouse.pipelines.defs.market_data.assets import ASSETS as MARKET_ASSETS
from market_warehouse.pipelines.defs.market_data.checks import CHECKS as MARKET_CHECKS
from market_warehouse.pipelines.defs.quality import quality_checks
from market_warehouse.pipelines.history import DEFAULT_HISTORY_START
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from tests.ui_data import MATERIALIZATIONS_QUERY, graphql
from tests.universes import SYNTHETIC_UNIVERSE, universe_file

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}

CHECKS_QUERY = """
query Checks($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization {
              status partition evaluation { severity partition success }
            }
            partitionStatuses {
              ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
            }
          }
        }
      }
    }
  }
}
"""

EXECUTIONS_QUERY = """
query Executions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) {
    runId status partition evaluation { severity success }
  }
}
"""


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


def checks_of(instance: dg.DagsterInstance, asset: str) -> dict[str, dict]:
    data = graphql(instance, CHECKS_QUERY, assetKey={"path": [asset]})
    checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
    return {c["name"]: c for c in checks}


def statuses_by_day(check: dict) -> dict[str, str]:
    """The check's partition statuses (ranges of days) expanded to one status per day of DAYS."""
    out = {}
    for r in check["partitionStatuses"]["ranges"]:
        for day in DAYS:
            if r["startKey"] <= day <= r["endKey"]:
                out[day] = r["status"]
    return out


def executions(instance: dg.DagsterInstance, asset: str, check: str) -> list[dict]:
    data = graphql(instance, EXECUTIONS_QUERY, assetKey={"path": [asset]}, checkName=check)
    return data["assetCheckExecutions"]


def synthetic_resources(url, tmp_path) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE)),
    }


def backfill_ohlcv(instance, resources, **kwargs) -> dg.ExecuteInProcessResult:
    """The run a single-run backfill launches (`tags` of the range, or one `partition_key`): the asset and
    its checks, one run."""
    return dg.materialize(
        [market_data.ohlcv, *quality_checks("ohlcv", "ohlcv", partitioned=True)],
        resources=resources,
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


def test_checks_of_a_three_day_single_run_backfill_read_succeeded_per_partition(instance, db_url, tmp_path):
    resources = synthetic_resources(db_url, tmp_path)
    # The run a single-run backfill of market_data_job over three days launches: every market-data asset
    # and every check of theirs, one run.
    result = dg.materialize(
        [*(MARKET_ASSETS[a] for a in market_data.MARKET_DATA_ASSETS), *MARKET_CHECKS],
        resources=resources,
        instance=instance,
        tags=RANGE_TAGS,
        raise_on_error=False,
    )
    assert result.success
    # One evaluation per check and partition, each naming its day.
    declared = {(k.asset_key.to_user_string(), k.name) for c in MARKET_CHECKS for k in c.check_keys}
    assert len(declared) == 3 * len(market_data.MARKET_DATA_ASSETS)
    evaluations = result.get_asset_check_evaluations()
    assert sorted((e.asset_key.to_user_string(), e.check_name, e.partition) for e in evaluations) == sorted(
        (asset, check, day) for asset, check in declared for day in DAYS
    )

    for asset in market_data.MARKET_DATA_ASSETS:
        checks = checks_of(instance, asset)
        names = {check for a, check in declared if a == asset}
        assert set(checks) >= names
        for name in names:
            latest = checks[name]["executionForLatestMaterialization"]
            assert latest is not None and latest["status"] == "SUCCEEDED", (asset, name, latest)
            assert statuses_by_day(checks[name]) == dict.fromkeys(DAYS, "SUCCEEDED"), (asset, name)
            runs = executions(instance, asset, name)
            assert sorted(e["partition"] for e in runs) == DAYS
            assert {e["status"] for e in runs} == {"SUCCEEDED"}
            assert {e["runId"] for e in runs} == {result.run_id}


def test_a_failing_partition_reads_failed_with_its_severity_and_the_others_succeeded(
    instance, db_url, tmp_path, engine
):
    resources = synthetic_resources(db_url, tmp_path)
    assert backfill_ohlcv(instance, resources, tags=RANGE_TAGS).success
    # An operator rule quarantining every candle with volume above 0: the middle day, fetched again,
    # has all its rows quarantined, far above the 5 % allowed.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO validation_rules (dataset, name, kind, column_name, params, severity) VALUES "
                "('ohlcv', 'volume_cap', 'range', 'volume', '{\"max\": 0}', 'error')"
            )
        )
    failed = backfill_ohlcv(
        instance,
        resources,
        partition_key="2024-03-02",
        run_config={"ops": {"ohlcv": {"config": {"refetch": True}}}},
    )
    assert not failed.success  # the blocking check failed the step

    checks = checks_of(instance, "ohlcv")
    fraction = checks["ohlcv_quarantine_fraction"]
    latest = fraction["executionForLatestMaterialization"]
    assert latest["status"] == "FAILED" and latest["partition"] == "2024-03-02"
    assert latest["evaluation"]["severity"] == "ERROR" and latest["evaluation"]["success"] is False
    assert statuses_by_day(fraction) == {
        "2024-03-01": "SUCCEEDED",
        "2024-03-02": "FAILED",
        "2024-03-03": "SUCCEEDED",
    }
    runs = executions(instance, "ohlcv", "ohlcv_quarantine_fraction")
    mine = [e for e in runs if e["runId"] == failed.run_id]
    assert [(e["partition"], e["status"], e["evaluation"]["severity"]) for e in mine] == [
        ("2024-03-02", "FAILED", "ERROR")
    ]


def materializations(instance, asset: str, run_id: str) -> dict[str, dict[str, int]]:
    """The integer metadata of each partition's materialization by the run, as the UI lists them."""
    data = graphql(instance, MATERIALIZATIONS_QUERY, assetKey={"path": [asset]}, partitions=DAYS)
    return {
        m["partition"]: {e["label"]: e["intValue"] for e in m["metadataEntries"] if "intValue" in e}
        for m in data["assetOrError"]["assetMaterializations"]
        if m["runId"] == run_id
    }


def test_each_partition_of_a_range_run_carries_its_own_counts(instance, db_url, tmp_path, engine):
    resources = synthetic_resources(db_url, tmp_path)
    # The middle day is loaded first, so the range run inserts into the first and last days only.
    assert backfill_ohlcv(instance, resources, partition_key="2024-03-02").success
    result = backfill_ohlcv(instance, resources, tags=RANGE_TAGS)
    assert result.success

    by_day = materializations(instance, "ohlcv", result.run_id)
    assert sorted(by_day) == DAYS
    with engine.connect() as conn:
        stored = dict(
            conn.execute(sa.text("SELECT to_char(time, 'YYYY-MM-DD'), count(*) FROM ohlcv GROUP BY 1")).all()
        )
    assert stored == dict.fromkeys(DAYS, 24)
    inserted = {day: m["rows_inserted"] for day, m in by_day.items()}
    assert inserted == {"2024-03-01": 24, "2024-03-02": 0, "2024-03-03": 24}
    for day, meta in by_day.items():
        assert meta["dagster/row_count"] == stored[day], day  # the stored rows of that day, not the range's
        assert meta["rows_fetched"] == inserted[day] + meta["rows_unchanged"] + meta["rows_quarantined"]


REPOSITORY_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name location { name }
        schedules { name description pipelineName executionTimezone }
        jobs { name description isAssetJob }
      }
    }
  }
}
"""

JOB_PARTITIONS_QUERY = """
query Job($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    ... on Pipeline { partitionKeysOrError { ... on PartitionKeys { partitionKeys } } }
  }
}
"""

DRY_RUN = """
mutation Tick($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    ... on DryRunInstigationTick {
      evaluationResult { runRequests { runKey jobName tags { key value } } skipReason error { message } }
    }
  }
}
"""

# (schedule, tick time UTC, the partition its run loads)
TICKS = [
    ("daily_market_data", "2024-03-05T00:15:00", "2024-03-04"),
    ("intraday_market_data", "2024-03-05T13:45:00", "2024-03-05"),
    ("daily_derived", "2024-03-05T00:45:00", "2024-03-04"),
]


def test_schedules_are_described_and_every_tick_names_its_partition(instance):
    (repo,) = graphql(instance, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"]
    location = {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}
    schedules = {s["name"]: s for s in repo["schedules"]}
    jobs = {j["name"]: j for j in repo["jobs"] if not j["name"].startswith("__")}
    assert all(s["description"] for s in schedules.values()), schedules
    assert all(j["description"] for j in jobs.values()), jobs

    for name, at, partition in TICKS:
        schedule = schedules[name]
        assert schedule["executionTimezone"] == "UTC"
        # The schedule's job is partitioned by day: the tick's partition is one of its keys.
        job = graphql(
            instance, JOB_PARTITIONS_QUERY, selector={**location, "pipelineName": schedule["pipelineName"]}
        )
        keys = job["pipelineOrError"]["partitionKeysOrError"]["partitionKeys"]
        assert partition in keys and keys == sorted(keys)

        timestamp = datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
        tick = graphql(instance, DRY_RUN, selector={**location, "scheduleName": name}, timestamp=timestamp)[
            "scheduleDryRun"
        ]["evaluationResult"]
        assert tick["error"] is None and tick["skipReason"] is None, tick
        (request,) = tick["runRequests"]
        tags = {t["key"]: t["value"] for t in request["tags"]}
        assert tags["dagster/partition"] == partition, (name, tags)
        assert partition in request["runKey"]


FIRST_PARTITION = """
import sys
from datetime import date
from market_warehouse.pipelines.partitions import DAILY
from market_warehouse.pipelines.demo.window import demo_window
print(DAILY.get_first_partition_key())
try:
    demo_window(2, date.fromisoformat(DAILY.get_first_partition_key()))
except ValueError as error:
    print("refused:", error)
"""


def first_partition(tmp_path, universe: str | None, **env: str) -> list[str]:
    """The first daily partition a fresh process sees, and whether the demo accepts a window whose first
    day is the one before it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MW_HISTORY_START", "MW_UNIVERSE")}
    if universe is not None:
        environ["MW_UNIVERSE"] = universe_file(tmp_path, universe)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_PARTITION],
        env={**environ, **env},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 0 or not done.stdout, done.stderr[-2000:]
    return done.stdout.splitlines() or [done.stderr.strip().splitlines()[-1]]


def test_partitions_start_where_the_universe_says_the_history_starts(tmp_path):
    shipped = first_partition(tmp_path, None)
    assert shipped[0] == DEFAULT_HISTORY_START  # the shipped universe: a recent start, not 2024-01-01
    # The demo refuses a window that starts before the first partition.
    assert shipped[1].startswith("refused: the window starts") and DEFAULT_HISTORY_START in shipped[1]

    universe = SYNTHETIC_UNIVERSE + "history_start: 2025-06-15\n"
    assert first_partition(tmp_path, universe)[0] == "2025-06-15"
    assert first_partition(tmp_path, universe, MW_HISTORY_START="2025-07-01")[0] == "2025-07-01"
    assert first_partition(tmp_path, SYNTHETIC_UNIVERSE)[0] == DEFAULT_HISTORY_START  # not set: default
    error = first_partition(tmp_path, SYNTHETIC_UNIVERSE + "history_start: June\n")[0]
    assert "history_start is not an ISO date" in error and "universe.yaml" in error


def test_each_day_of_a_derived_range_run_carries_its_own_counts(instance, db_url, tmp_path, engine):
    resources = {**synthetic_resources(db_url, tmp_path), "analytics": AnalyticsResource()}
    result = dg.materialize(
        [market_data.ohlcv, features_asset], resources=resources, instance=instance, tags=RANGE_TAGS
    )
    assert result.success
    by_day = materializations(instance, "features", result.run_id)
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                sa.text("SELECT to_char(time, 'YYYY-MM-DD'), count(*) FROM features GROUP BY 1")
            ).all()
        )
    assert sorted(by_day) == DAYS and sorted(stored) == DAYS
    for day, meta in by_day.items():
        assert meta["dagster/row_count"] == stored[day], day  # the day's rows, not the range's
        assert meta["rows_out"] == stored[day] and meta["rows_written"] == stored[day], day
