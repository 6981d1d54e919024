"""The historical_files asset, its check and the landing-folder sensor, run by Dagster against a real database."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs import ingestion as history
from market_warehouse.resources.dagster_resources import LandingFolderResource, WarehouseResource

T0_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def klines(n: int) -> list[list]:
    return [
        [T0_MS + i * 60_000, str(100 + i), str(102 + i), str(99 + i), str(101 + i), "10", T0_MS + (i + 1) * 60_000 - 1,
         "1000", 5, "1", "100", "0"]
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def landing_dir(tmp_path):
    folder = tmp_path / "landing"
    (folder / "binance").mkdir(parents=True)
    (folder / "binance" / "BTC_USDT-1m.json").write_text(json.dumps(klines(5)))
    (folder / "binance" / "corrupt-1m.json").write_text('{"data": [[1704067200000, "1"')
    (folder / "binance" / "empty.json").write_text("")
    return folder


def resources_for(db_url, folder) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "landing": LandingFolderResource(path=str(folder)),
    }


def materialize(db_url, folder) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [history.historical_files, history.historical_files_no_failed_files],
        resources=resources_for(db_url, folder),
    )


def test_materialization_loads_the_folder_and_reports_failures(db_url, landing_dir):
    result = materialize(db_url, landing_dir)
    assert result.success  # a bad file is a data problem: the good ones loaded
    (materialization,) = result.asset_materializations_for_node("historical_files")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["files_seen"], meta["files_loaded"], meta["files_failed"], meta["files_empty"]) == (
        3,
        1,
        1,
        1,
    )
    assert (meta["rows_fetched"], meta["rows_inserted"], meta["rows_updated"]) == (5, 5, 0)
    assert (meta["rows_unchanged"], meta["rows_quarantined"]) == (0, 0)
    assert meta["dagster/row_count"] == 5
    assert meta["dagster/table_name"] == "public.ohlcv"
    assert "close" in {c.name for c in meta["dagster/column_schema"].columns}
    assert meta["time_range"] == "2024-01-01T00:00:00+00:00 / 2024-01-01T00:04:00+00:00"
    assert "binance/corrupt-1m.json" in meta["failed_files"] and "invalid JSON" in meta["failed_files"]
    rows = {r.data["path"]: r.data for r in meta["files"].records}
    assert rows["binance/BTC_USDT-1m.json"]["layout"] == "binance-klines"
    assert rows["binance/BTC_USDT-1m.json"]["series"] == "binance BTC/USDT 1m"
    assert rows["binance/corrupt-1m.json"]["status"] == "failed"

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "historical_files_no_failed_files"
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["files_failed"].value == 1

    # The same folder again: nothing written; fixing the bad file makes the check pass.
    again = materialize(db_url, landing_dir)
    (materialization,) = again.asset_materializations_for_node("historical_files")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["files_skipped"], meta["rows_fetched"], meta["rows_inserted"], meta["rows_updated"]) == (
        2,
        0,
        0,
        0,
    )
    assert meta["dagster/row_count"] == 5
    (landing_dir / "binance" / "corrupt-1m.json").rename(landing_dir / "binance" / "ETH_USDT-1m.json")
    fixed = materialize(db_url, landing_dir)
    assert fixed.get_asset_check_evaluations()[0].passed is False  # still corrupt, now under another name
    (landing_dir / "binance" / "ETH_USDT-1m.json").write_text(json.dumps(klines(3)))
    fixed = materialize(db_url, landing_dir)
    assert fixed.get_asset_check_evaluations()[0].passed is True
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ohlcv")).scalar() == 8
    finally:
        engine.dispose()


def test_a_configured_folder_that_does_not_exist_fails_the_run(db_url, tmp_path):
    result = dg.materialize(
        [history.historical_files], resources=resources_for(db_url, tmp_path / "typo"), raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("historical_files")
    assert "does not exist" in str(failure.error.message)


def test_sensor_requests_a_run_only_when_files_appear_or_change(landing_dir, db_url):
    warehouse = WarehouseResource(database_url=db_url.render_as_string(hide_password=False))
    resources = {
        "landing": LandingFolderResource(path=str(landing_dir), settle_seconds=0),
        "warehouse": warehouse,
    }
    old = time.time() - 60
    for path in landing_dir.rglob("*.json"):
        os.utime(path, (old, old))

    context = dg.build_sensor_context(cursor=None, resources=resources)
    first = history.landing_folder_sensor(context)
    assert isinstance(first, dg.RunRequest) and first.tags["market-warehouse/landed-files"] == "3"
    cursor = context.cursor
    assert cursor == first.run_key

    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    assert isinstance(history.landing_folder_sensor(context), dg.SkipReason)

    (landing_dir / "binance" / "ETH_USDT-1m.json").write_text(json.dumps(klines(2)))
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    second = history.landing_folder_sensor(context)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key

    # A file still being written (modified within settle_seconds) waits for the next tick.
    busy = {
        "landing": LandingFolderResource(path=str(landing_dir), settle_seconds=30),
        "warehouse": warehouse,
    }
    context = dg.build_sensor_context(cursor=cursor, resources=busy)
    skipped = history.landing_folder_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "1 file(s) still being written" in skipped.skip_message


def test_sensor_does_not_reload_what_the_ledger_has_seen(landing_dir, db_url):
    """A fresh sensor (no cursor, as when the UI starts) after the files were loaded requests nothing:
    the loaded files and the known-failed one are in the ledger in their current version."""
    warehouse = WarehouseResource(database_url=db_url.render_as_string(hide_password=False))
    resources = {
        "landing": LandingFolderResource(path=str(landing_dir), settle_seconds=0),
        "warehouse": warehouse,
    }
    old = time.time() - 60
    for path in landing_dir.rglob("*.json"):
        os.utime(path, (old, old))
    assert materialize(db_url, landing_dir).success  # loads one file, records the corrupt one as failed

    skipped = history.landing_folder_sensor(dg.build_sensor_context(cursor=None, resources=resources))
    assert isinstance(skipped, dg.SkipReason), skipped
    assert "all 3 landed files already in the ledger; 1 known failed" in skipped.skip_message

    # The failed file fixed in place (new content and mtime): a run for it.
    (landing_dir / "binance" / "corrupt-1m.json").write_text(json.dumps(klines(3)))
    request = history.landing_folder_sensor(dg.build_sensor_context(cursor=None, resources=resources))
    assert isinstance(request, dg.RunRequest) and request.tags["market-warehouse/unseen-files"] == "1"


def test_sensor_skips_a_missing_folder(tmp_path):
    context = dg.build_sensor_context(
        resources={
            "landing": LandingFolderResource(path=str(tmp_path / "none")),
            "warehouse": WarehouseResource(),
        }
    )
    result = history.landing_folder_sensor(context)
    assert isinstance(result, dg.SkipReason) and "does not exist" in result.skip_message


def test_definitions_wire_the_job_sensor_and_check():
    # The warehouse resource comes from the code location's merge (pipelines/definitions.py).
    defs = dg.Definitions.merge(history.defs, dg.Definitions(resources={"warehouse": WarehouseResource()}))
    job = defs.resolve_job_def("historical_files_job")
    assert job.asset_layer.asset_graph.get_all_asset_keys() >= {dg.AssetKey("historical_files")}
    sensor = defs.resolve_sensor_def("landing_folder_sensor")
    assert sensor.job_name == "historical_files_job"
    assert sensor.minimum_interval_seconds == 60
    spec = history.historical_files.specs_by_key[dg.AssetKey("historical_files")]
    assert spec.group_name == "ingestion" and set(spec.kinds) == {"postgres", "json"}
    assert history.historical_files.op.pool == "warehouse"
