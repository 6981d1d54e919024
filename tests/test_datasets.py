"""`pipelines/datasets.py` is the one asset -> table mapping: the catalog, the checks and the README agree with it."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from market_warehouse.pipelines.datasets import DATASETS, MARKET_DATA, checked_in, in_group, table_of

README = Path(__file__).resolve().parents[1] / "README.md"


def _catalog() -> tuple[dg.Definitions, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from market_warehouse.pipelines.definitions import defs

        return defs, defs.resolve_asset_graph()


def test_every_asset_writing_a_table_is_declared_with_that_table():
    defs, graph = _catalog()
    written = {}
    for key in graph.get_all_asset_keys():
        table = (graph.get(key).metadata or {}).get("dagster/table_name")
        if table is not None:
            written[key.to_user_string()] = str(table).removeprefix("public.")
    assert written == {d.asset: d.table for d in DATASETS}


def test_checked_datasets_carry_the_three_load_checks_and_no_other_asset_does():
    defs, graph = _catalog()
    load_checks = {
        (k.asset_key.to_user_string(), k.name)
        for k in graph.asset_check_keys
        if k.name.endswith(("_expectations", "_quarantine_fraction", "_unique_key"))
    }
    expected = {
        (d.asset, f"{d.table}_{suffix}")
        for d in checked_in()
        for suffix in ("expectations", "quarantine_fraction", "unique_key")
    }
    assert load_checks == expected


def test_market_data_assets_are_built_from_their_rows():
    defs, graph = _catalog()
    for ds in in_group(MARKET_DATA):
        node = graph.get(dg.AssetKey(ds.asset))
        spec = defs.resolve_assets_def(ds.asset).specs_by_key[dg.AssetKey(ds.asset)]
        assert ds.ingest is not None
        assert spec.description == ds.description and set(spec.kinds) == set(ds.kinds)
        assert node.group_name == MARKET_DATA and node.is_partitioned
    job = defs.resolve_job_def("market_data_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        d.asset for d in in_group(MARKET_DATA)
    }


def test_readme_names_every_dataset():
    text = README.read_text()
    missing = [d.asset for d in DATASETS if f"`{d.asset}`" not in text]
    assert not missing, f"README does not mention {missing}"
    assert table_of("funding_rates") == "funding_rates" and table_of("open_interest") == "open_interest"
