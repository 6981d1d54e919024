"""Data versions of the derived assets' partitions as the Dagster UI shows them (issue 12, point 2), read
through the GraphQL the UI queries: each day's materialization carries its own day's version (the hash of
the rows it owns, the one its `lineage` row records) and no other day's; the version Dagster keeps for a
partition (`dataVersionByPartition`, the `dagster/data_version` tag) is the day's own when the day ran
alone (the daily schedule), and, after a single-run range, the run's (Dagster 1.13 stamps one version on
every partition of a run: dagster-io/dagster#34013).
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.defs.derived import AnalyticsResource, features_asset
from market_warehouse.resources.analytics import lineage
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from tests.ui_data import MATERIALIZATIONS_QUERY, graphql
from tests.universes import SYNTHETIC_UNIVERSE, universe_file

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


def run_features(instance, db_url, tmp_path, **kwargs) -> dg.ExecuteInProcessResult:
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE)),
        "analytics": AnalyticsResource(),
    }
    result = dg.materialize(
        [market_data.ohlcv, features_asset], resources=resources, instance=instance, **kwargs
    )
    assert result.success
    return result


def events_by_run(instance) -> tuple[dict[str, dict[str, dict]], list[str | None]]:
    """{run id: {partition: {"tags", "metadata"}}} of features' materializations, and the data version the
    UI shows for each day."""
    data = graphql(instance, MATERIALIZATIONS_QUERY, assetKey={"path": ["features"]}, partitions=DAYS)
    runs: dict[str, dict[str, dict]] = {}
    for event in data["assetOrError"]["assetMaterializations"]:
        entries = {
            e["label"]: e.get("text") or e.get("jsonString") or e.get("mdStr") or ""
            for e in event["metadataEntries"]
        }
        tags = {t["key"]: t["value"] for t in event["tags"]}
        runs.setdefault(event["runId"], {})[event["partition"]] = {"tags": tags, "metadata": entries}
    return runs, data["assetNodeOrError"]["dataVersionByPartition"]


def day_versions(engine) -> dict[str, str]:
    """The data version of each day of features, as its lineage row records it."""
    with engine.connect() as conn:
        return {day: lineage.latest(conn, "features", day).data_version for day in DAYS}


def test_each_partition_carries_its_own_days_data_version(instance, db_url, tmp_path, engine):
    range_run = run_features(instance, db_url, tmp_path, tags=RANGE_TAGS)
    own = day_versions(engine)
    assert len(set(own.values())) == 3 and None not in own.values()  # three days, three contents

    runs, shown = events_by_run(instance)
    by_day = runs[range_run.run_id]
    assert sorted(by_day) == DAYS
    for day, event in by_day.items():
        metadata = event["metadata"]
        assert metadata["data_version"] == own[day], day
        others = [v for d, v in own.items() if d != day]
        leaked = [label for label, text in metadata.items() if any(v in text for v in others)]
        assert not leaked, (day, leaked)  # no entry of this day names another day's version
    # Dagster 1.13 stamps the range run's one version on all three days (not any day's own).
    stamped = {event["tags"]["dagster/data_version"] for event in by_day.values()}
    assert len(stamped) == 1 and not stamped & set(own.values())
    assert shown == [stamped.pop()] * 3

    # The daily schedule's run: one day, which then has its own version as Dagster's data version.
    day_run = run_features(instance, db_url, tmp_path, partition_key=DAYS[1])
    runs, shown = events_by_run(instance)
    (event,) = runs[day_run.run_id].values()
    assert event["tags"]["dagster/data_version"] == event["metadata"]["data_version"] == own[DAYS[1]]
    assert shown[1] == own[DAYS[1]] and shown[0] == shown[2] != own[DAYS[0]]
    assert day_versions(engine) == own  # equal content, equal version
