"""Catalog facts of the Dagster UI (issue 12, point 5), read through the GraphQL the UI queries: owners, code
references, freshness policies, table names, kinds and described column schemas; `warehouse_stats` as one
metadata table; the stale-assets sensor; the console logger and the demo's job."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from dagster._utils.schedules import get_latest_completed_cron_tick

from market_warehouse.pipelines import catalog
from market_warehouse.pipelines.datasets import DATASETS
from market_warehouse.pipelines.defs.maintenance import warehouse_stats
from market_warehouse.pipelines.defs.observability.sensors import FAIL, PASS, UNKNOWN, WARN, freshness_state
from market_warehouse.pipelines.table_metadata import AGGREGATES, table_schema
from market_warehouse.resources import clock
from market_warehouse.resources.dagster_resources import WarehouseResource
from tests.ui_data import graphql

ROOT = Path(__file__).resolve().parents[1]

NODES_QUERY = """
{
  assetNodes {
    assetKey { path }
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    internalFreshnessPolicy {
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
      ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    }
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
      ... on CodeReferencesMetadataEntry {
        codeReferences { ... on LocalFileCodeReference { filePath lineNumber label } }
      }
    }
  }
}
"""

LATEST_QUERY = """
query Latest($assetKey: AssetKeyInput!) {
  assetOrError(assetKey: $assetKey) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        metadataEntries {
          label
          ... on TableMetadataEntry { table { records schema { columns { name } } } }
        }
      }
    }
  }
}
"""


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


def nodes(instance) -> dict[str, dict]:
    return {"/".join(n["assetKey"]["path"]): n for n in graphql(instance, NODES_QUERY)["assetNodes"]}


def entries(node: dict) -> dict[str, dict]:
    return {e["label"]: e for e in node["metadataEntries"]}


def test_every_asset_has_owners_code_references_and_the_declared_freshness(instance):
    by_asset = nodes(instance)
    assert len(by_asset) >= 18
    for asset, node in by_asset.items():
        assert node["owners"] == [{"team": "market-warehouse"}], asset
        refs = entries(node)["dagster/code_references"]["codeReferences"]
        assert refs and refs[0]["label"] == "definition", asset
        for ref in refs:  # every link opens the line that defines the asset, its steps or its declaration
            line = Path(ref["filePath"]).read_text().splitlines()[ref["lineNumber"] - 1]
            assert asset in line or line.lstrip().startswith(("def ", "class ", "@")), (asset, line)
        policy = node["internalFreshnessPolicy"]
        spec_policy, _schedule = catalog.freshness_of(dg.AssetSpec(asset, group_name=_group(asset)))
        assert (policy is None) == (spec_policy is None), asset
    # A derived asset links its steps class and its datasets.py row, not only the shared factory.
    labels = [r["label"] for r in entries(by_asset["features"])["dagster/code_references"]["codeReferences"]]
    assert labels == ["definition", "computation", "declaration"]
    assert by_asset["ohlcv"]["internalFreshnessPolicy"] == {
        "deadlineCron": "45 0 * * *",
        "lowerBoundDeltaSeconds": 1800,
        "timezone": "UTC",
    }
    assert by_asset["ohlcv_1h"]["internalFreshnessPolicy"] == {
        "failWindowSeconds": 5400,
        "warnWindowSeconds": 4200,
    }
    assert by_asset["historical_files"]["internalFreshnessPolicy"] is None  # driven by files, not a clock


def _group(asset: str) -> str | None:
    return next((d.group for d in DATASETS if d.asset == asset), None)


def test_tables_have_names_kinds_and_described_column_schemas(instance):
    by_asset = nodes(instance)
    for asset in ("ohlcv", "ohlcv_1h", "ohlcv_1d", "features", "risk_metrics"):
        meta = entries(by_asset[asset])
        assert meta["dagster/table_name"]["text"] == f"public.{asset}"
        columns = meta["dagster/column_schema"]["schema"]["columns"]
        assert columns and all(c["description"] for c in columns), asset
        assert "postgres" in by_asset[asset]["kinds"], asset
    aggregate = {
        c["name"]: c for c in entries(by_asset["ohlcv_1h"])["dagster/column_schema"]["schema"]["columns"]
    }
    assert list(aggregate)[:4] == ["exchange", "symbol", "price", "bucket"] and "candle_count" in aggregate
    assert aggregate["close"]["type"] == "double precision"
    stats = entries(by_asset["warehouse_stats"])
    assert [c["name"] for c in stats["dagster/column_schema"]["schema"]["columns"]][:5] == [
        "table",
        "kind",
        "rows",
        "bytes",
        "pieces",
    ]
    assert by_asset["warehouse_stats"]["kinds"] == ["postgres"]


def test_every_column_an_asset_writes_is_described():
    tables = {d.table for d in DATASETS} | set(AGGREGATES)
    undescribed = [
        f"{t}.{c.name}" for t in sorted(tables) for c in table_schema(t).columns if not c.description
    ]
    assert undescribed == []


def test_warehouse_stats_is_one_metadata_table(instance, db_url):
    resources = {"warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False))}
    assert dg.materialize([warehouse_stats], resources=resources, instance=instance).success
    data = graphql(instance, LATEST_QUERY, assetKey={"path": ["warehouse_stats"]})
    (latest,) = data["assetOrError"]["assetMaterializations"]
    meta = {e["label"]: e for e in latest["metadataEntries"]}
    assert not [label for label in meta if "/" in label]  # no more `<table>/rows|bytes|pieces` keys
    records = [json.loads(r) for r in meta["tables"]["table"]["records"]]
    by_table = {r["table"]: r for r in records}
    assert {"ohlcv", "features", "ohlcv_1h", "ohlcv_1d"} <= set(by_table)
    assert all(isinstance(r[c], int) for r in records for c in ("rows", "bytes", "pieces"))
    assert by_table["ohlcv"]["pieces"] >= 1 and by_table["ohlcv"]["bytes"] > 0
    assert by_table["ohlcv"]["kind"] == "partitioned"  # the embedded default: plain PostgreSQL


@pytest.mark.parametrize(
    ("policy", "age", "state"),
    [
        (catalog.AGGREGATES_DUE, timedelta(minutes=30), PASS),
        (catalog.AGGREGATES_DUE, timedelta(minutes=75), WARN),
        (catalog.AGGREGATES_DUE, timedelta(minutes=95), FAIL),
    ],
)
def test_time_window_freshness(policy, age, state):
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert freshness_state(policy, now - age, now) == state


def test_daily_freshness_is_due_after_the_tick_plus_settle():
    policy, _ = catalog.FRESHNESS_BY_GROUP["market_data"]
    day = datetime(2026, 3, 2, tzinfo=UTC)
    loaded = day + timedelta(minutes=20)  # the 00:15 run finished at 00:20
    assert freshness_state(policy, loaded, day + timedelta(minutes=44)) == PASS  # before today's deadline
    assert freshness_state(policy, loaded, day + timedelta(hours=23)) == PASS
    assert freshness_state(policy, loaded, day + timedelta(days=1, minutes=50)) == FAIL  # next day, no run
    assert freshness_state(policy, day - timedelta(hours=2), day + timedelta(hours=1)) == FAIL
    assert freshness_state(policy, None, day) == UNKNOWN


def test_freshness_deadlines_follow_the_schedules_they_name():
    from market_warehouse.pipelines.definitions import defs

    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    due = [*catalog.FRESHNESS_BY_GROUP.values(), *catalog.FRESHNESS_BY_ASSET.values()]
    for policy, schedule_name in due:
        if policy is None:
            continue
        schedule = schedules[schedule_name]
        if isinstance(policy, dg.FreshnessPolicy) and hasattr(policy, "deadline_cron"):
            # The schedule ticks inside the window [deadline - settle, deadline] of a day.
            deadline = get_latest_completed_cron_tick(
                policy.deadline_cron, datetime(2026, 3, 3, tzinfo=UTC), "UTC"
            )
            tick = get_latest_completed_cron_tick(schedule.cron_schedule, deadline, "UTC")
            assert deadline - policy.lower_bound_delta <= tick < deadline, schedule_name
        else:  # a time window: longer than the schedule's period
            first = get_latest_completed_cron_tick(
                schedule.cron_schedule, datetime(2026, 3, 3, tzinfo=UTC), "UTC"
            )
            second = get_latest_completed_cron_tick(
                schedule.cron_schedule, first - timedelta(seconds=1), "UTC"
            )
            assert first - second < policy.fail_window.to_timedelta(), schedule_name


def test_the_stale_assets_sensor_lists_late_assets(instance, db_url):
    from market_warehouse.pipelines.definitions import defs

    resources = {"warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False))}
    with clock.frozen(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)):
        assert dg.materialize([warehouse_stats], resources=resources, instance=instance).success
    repo = defs.get_repository_def()
    sensor = defs.resolve_sensor_def("stale_assets_sensor")
    events = instance.get_latest_materialization_event(dg.AssetKey("warehouse_stats"))
    made = datetime.fromtimestamp(events.timestamp, UTC)

    def evaluate(at: datetime) -> str:
        with clock.frozen(at):
            context = dg.build_sensor_context(instance=instance, repository_def=repo)
            (reason,) = [sensor.evaluate_tick(context).skip_message]
        return reason

    # Just after its materialization the stats are fresh; everything else was never materialized.
    fresh = evaluate(made + timedelta(minutes=1))
    assert fresh.startswith("no asset late") and "1 fresh" in fresh, fresh
    # Two nights later without a run: late, with the time of its last materialization.
    late = evaluate(made + timedelta(days=2))
    assert late.startswith("late: warehouse_stats FAIL (last ") and "0 fresh" in late, late


def test_owners_come_from_the_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.OWNERS_ENV, "team:quants, ops@example.com")
    assert catalog.owners() == ["team:quants", "ops@example.com"]
    monkeypatch.setenv(catalog.OWNERS_ENV, "quants")
    with pytest.raises(Exception, match="MW_OWNERS must list e-mail addresses or team:<name>.*'quants'"):
        catalog.owners()


DEMO_JOB = """
import warnings
warnings.simplefilter("ignore")
from market_warehouse.pipelines.definitions import defs
from market_warehouse.pipelines.demo.runs import ASSET_JOB, demo_definitions
import dagster as dg
demo = demo_definitions(dg.colored_console_logger, None)
print(demo.resolve_implicit_global_asset_job_def().name == ASSET_JOB)
print(ASSET_JOB in {j.name for j in defs.get_repository_def().get_all_jobs()})
"""


def test_demo_runs_name_a_job_of_the_code_location():
    done = subprocess.run(
        [sys.executable, "-c", DEMO_JOB], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.stdout.split() == ["True", "True"], done.stderr[-2000:]


def test_the_console_shows_info_not_dagsters_debug_events(capfd, tmp_path):
    # The project instance's logging settings (dagster.yaml), on a temporary instance.
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert settings["python_logs"] == {"python_log_level": "INFO"}

    @dg.asset
    def chatty(context) -> None:  # no annotation: this module postpones them, Dagster reads them
        context.log.info("an info line")
        context.log.debug("a debug line")

    job = dg.Definitions(assets=[chatty]).resolve_implicit_global_asset_job_def()
    overrides = {"python_logs": settings["python_logs"]}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        result = job.execute_in_process(instance=instance)
        assert result.success
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
    err = capfd.readouterr().err
    assert "an info line" in err and "an info line" in logged
    assert " - DEBUG - " not in err and "STEP_START" not in err
    assert "a debug line" not in err and "a debug line" not in logged


def test_the_equity_sparkline_is_short_enough_to_show_inline():
    from xml.etree import ElementTree

    from market_warehouse.pipelines.defs.derived.plots import INLINE_MARKDOWN_LIMIT, equity_sparkline

    times = pd.date_range("2026-11-27", periods=24 * 30, freq="h", tz="UTC")
    equity = pd.Series(10_000 + np.cumsum(np.random.default_rng(3).normal(0, 25, len(times))), index=times)
    value = equity_sparkline(equity).value
    assert len(value) < INLINE_MARKDOWN_LIMIT  # the UI's threshold for inline markdown (webapp bundle)
    svg = base64.b64decode(value.split("base64,", 1)[1].rstrip(")"))
    root = ElementTree.fromstring(svg)
    shapes = [child.tag.rsplit("}", 1)[-1] for child in root]
    assert shapes == ["polygon", "polyline"]  # the drawdown shaded under the equity line
    line = [tuple(map(int, p)) for p in zip(*[iter(root[1].get("points").split(","))] * 2, strict=True)]
    assert line[0][0] == 0 and line[-1][0] == 240 and all(0 <= y <= 60 for _, y in line)
    low = int(np.argmin(equity.to_numpy()) / (len(equity) - 1) * 240)
    assert min(line, key=lambda p: -p[1])[0] == pytest.approx(
        low, abs=240 / 8
    )  # the lowest point where it was
