"""What the Dagster UI shows, read through the GraphQL API the UI itself queries (issue 12).

Runs are launched in process against a real Dagster instance (SQLite storage in a temporary folder) as the
single-run backfill of a partition range launches them: one run tagged with the range. The UI's view is
then read with dagster-graphql's `execute_dagster_graphql` over an in-process workspace of the real code
location (`pipelines.definitions:defs`), as dagster-graphql's own tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql

from pipelines.defs import market_data
from pipelines.defs.quality import quality_checks
from tests.test_market_data_assets import RANGE_TAGS, synthetic_resources

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
CHECKS = {"ohlcv_expectations", "ohlcv_quarantine_fraction", "ohlcv_unique_key"}

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


@contextmanager
def ui(instance: dg.DagsterInstance):
    """The UI's GraphQL context over the real code location."""
    origin = LoadableTargetOrigin(module_name="pipelines.definitions", attribute="defs")
    with in_process_test_workspace(instance, origin) as context:
        yield context


def graphql(instance: dg.DagsterInstance, query: str, **variables) -> dict:
    with ui(instance) as context:
        result = execute_dagster_graphql(context, query, variables=variables)
    assert not result.errors, result.errors
    return result.data


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
    result = backfill_ohlcv(instance, resources, tags=RANGE_TAGS)
    assert result.success
    # One evaluation per check and partition, each naming its day.
    evaluations = result.get_asset_check_evaluations()
    assert sorted((e.check_name, e.partition) for e in evaluations) == sorted(
        (c, d) for c in CHECKS for d in DAYS
    )

    checks = checks_of(instance, "ohlcv")
    assert set(checks) >= CHECKS
    for name in CHECKS:
        latest = checks[name]["executionForLatestMaterialization"]
        assert latest is not None and latest["status"] == "SUCCEEDED", (name, latest)
        assert statuses_by_day(checks[name]) == dict.fromkeys(DAYS, "SUCCEEDED"), name
        runs = executions(instance, "ohlcv", name)
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
