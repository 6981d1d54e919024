"""Dagster asset checks: GX result metadata, and blocking checks that stop downstream assets in a run.

The real assets live in other modules; these tests define small assets with the same keys that load
through `load_frame`, exactly as the real ones do.
"""

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from quality_data import NOW, candles

from market_warehouse.pipelines.defs.quality import CHECKED_ASSETS, quality_checks
from market_warehouse.pipelines.partitions import DAILY
from market_warehouse.resources.dagster_resources import WarehouseResource
from market_warehouse.resources.warehouse.load import load_frame

# The checks of every checked asset, as the domains build them next to their assets.
quality_defs = dg.Definitions(
    asset_checks=[c for a, d, p in CHECKED_ASSETS for c in quality_checks(a, d, partitioned=p)]
)
PARTITION = "2024-06-01"


class BadRows(dg.Config):
    bad: int = 0  # rows of the day given a negative volume
    load: bool = True  # False: materialize without loading (the checks then read what is stored)


def _assets():
    @dg.asset(name="ohlcv", partitions_def=DAILY)
    def ohlcv(context: dg.AssetExecutionContext, config: BadRows, warehouse: WarehouseResource):
        if not config.load:
            return dg.MaterializeResult(metadata={"rows_fetched": 0, "rows_quarantined": 0})
        frame = candles(24, start=pd.Timestamp(context.partition_key, tz="UTC"))
        frame.loc[: config.bad - 1, "volume"] = -1.0
        result = load_frame(
            warehouse.engine(),
            "ohlcv",
            frame,
            run_id=context.run.run_id,
            partition_key=context.partition_key,
            now=NOW,
        )
        return dg.MaterializeResult(
            metadata={"rows_fetched": result.fetched, "rows_quarantined": result.quarantined}
        )

    @dg.asset(name="downstream_features", partitions_def=DAILY, deps=[ohlcv])
    def downstream_features() -> None:
        return None

    return [ohlcv, downstream_features]


def _run(db_url, bad: int = 0, load: bool = True):
    resources = {"warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False))}
    return dg.materialize(
        [*_assets(), *quality_checks("ohlcv", "ohlcv", partitioned=True)],
        partition_key=PARTITION,
        resources=resources,
        run_config=dg.RunConfig(ops={"ohlcv": BadRows(bad=bad, load=load)}),
        raise_on_error=False,
    )


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_clean_partition_passes_and_reports_the_gx_suite(db_url):
    result = _run(db_url)
    checks = _checks(result)
    assert set(checks) == {"ohlcv_expectations", "ohlcv_quarantine_fraction", "ohlcv_unique_key"}
    assert all(c.passed for c in checks.values())
    meta = checks["ohlcv_expectations"].metadata
    stats = meta["statistics"].value
    assert stats["evaluated_expectations"] >= 8 and stats["unsuccessful_expectations"] == 0
    assert meta["rows_checked"].value == 24
    assert meta["quarantined_this_run"].value == 0
    assert "downstream_features" in _materialized(result)


def test_blocking_check_stops_downstream_assets(db_url):
    result = _run(db_url, bad=3)  # 3 of 24 rows = 12.5 % > 5 %
    checks = _checks(result)
    fraction = checks["ohlcv_quarantine_fraction"]
    assert not fraction.passed and fraction.severity == dg.AssetCheckSeverity.ERROR
    assert fraction.metadata["rows_quarantined"].value == 3
    assert fraction.metadata["fraction"].value == 0.125
    assert fraction.metadata["quarantined_this_run"].value == 3
    assert checks["ohlcv_expectations"].metadata["quarantined_this_run"].value == 3
    assert "ohlcv" in _materialized(result)
    assert "downstream_features" not in _materialized(result)

    # One bad row (4 %) stays under the threshold: downstream runs.
    assert "downstream_features" in _materialized(_run(db_url, bad=1))


def test_expectations_report_failing_stored_rows_without_blocking(db_url, engine):
    _run(db_url)
    with engine.begin() as conn:  # a row that bypassed the loader
        conn.execute(
            sa.text("UPDATE ohlcv SET high = low * 0.5 WHERE time = :t"),
            {"t": pd.Timestamp(PARTITION, tz="UTC").to_pydatetime()},
        )
    result = _run(db_url, load=False)
    expectations = _checks(result)["ohlcv_expectations"]
    assert not expectations.passed and expectations.severity == dg.AssetCheckSeverity.WARN
    failed = {f["rule"]: f for f in expectations.metadata["failed_expectations"].value}
    assert {"high_ge_open", "high_ge_close", "high_ge_low"} <= set(failed)
    assert failed["high_ge_low"]["unexpected_count"] == 1
    assert failed["high_ge_low"]["sample"][0]["time"].startswith(PARTITION)
    assert expectations.metadata["failing_rows_sample"].value
    assert all(c.passed for name, c in _checks(result).items() if name != "ohlcv_expectations")


def test_unique_key_check_reads_the_real_table(db_url, engine):
    _run(db_url)
    with engine.begin() as conn:  # without the primary key a duplicate can be stored
        conn.execute(sa.text("ALTER TABLE ohlcv DROP CONSTRAINT pk_ohlcv"))
        conn.execute(
            sa.text("INSERT INTO ohlcv SELECT * FROM ohlcv WHERE time = :t"),
            {"t": NOW.replace(year=2024, month=6, day=1)},
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ohlcv")).scalar() == 25
    result = _run(db_url, load=False)
    unique = _checks(result)["ohlcv_unique_key"]
    assert not unique.passed and unique.metadata["duplicated_keys"].value == 1
    assert unique.metadata["sample"].value[0]["copies"] == 2


def test_definitions_load_with_checks_for_every_loaded_asset():
    keys = {(k.asset_key.to_user_string(), k.name) for c in quality_defs.asset_checks for k in c.check_keys}
    for asset, dataset in [
        ("historical_files", "ohlcv"),
        ("ohlcv", "ohlcv"),
        ("market_trades", "market_trades"),
        ("orderbook_snapshots", "orderbook_snapshots"),
        ("market_metrics", "market_metrics"),
        ("funding_rates", "funding_rates"),
        ("open_interest", "open_interest"),
    ]:
        for suffix in ("expectations", "quarantine_fraction", "unique_key"):
            assert (asset, f"{dataset}_{suffix}") in keys
    blocking = {c.name: c.blocking for c in quality_defs.asset_checks for c in c.check_specs}
    assert blocking["ohlcv_quarantine_fraction"] and blocking["ohlcv_unique_key"]
    assert not blocking["ohlcv_expectations"]
    # The target assets are defined in other modules: stand in with specs of the same partitioning.
    specs = [dg.AssetSpec(a, partitions_def=DAILY if p else None) for a, _, p in CHECKED_ASSETS]
    dg.Definitions.validate_loadable(
        dg.Definitions.merge(
            quality_defs, dg.Definitions(assets=specs, resources={"warehouse": WarehouseResource()})
        )
    )


def test_unpartitioned_asset_checks_the_rows_its_run_wrote(db_url, engine):
    load_frame(engine, "ohlcv", candles(5, symbol="OLD/USDT"), now=NOW)  # written before the run

    @dg.asset(name="historical_files")
    def historical_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        frame = candles(7, symbol="NEW/USDT")
        frame.loc[0, "volume"] = -1.0
        result = load_frame(warehouse.engine(), "ohlcv", frame, run_id=context.run.run_id, now=NOW)
        return dg.MaterializeResult(
            metadata={"rows_fetched": result.fetched, "rows_quarantined": result.quarantined}
        )

    result = dg.materialize(
        [historical_files, *quality_checks("historical_files", "ohlcv", partitioned=False)],
        resources={"warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False))},
        raise_on_error=False,
    )
    checks = _checks(result)
    assert checks["ohlcv_expectations"].passed
    assert checks["ohlcv_expectations"].metadata["rows_checked"].value == 6  # not the 5 older candles
    assert not checks["ohlcv_quarantine_fraction"].passed  # 1 of 7 > 5 %
    assert checks["ohlcv_unique_key"].passed
