"""Snapshot of the whole Dagster catalog: what a user sees in the UI must not change by accident.

The snapshot (`tests/snapshots/catalog.json`) lists every asset (group, upstream keys, partitions, backfill
policy, kinds, pool), every asset check (target, blocking), every job (the assets it selects, its
partitions), schedule (cron, zone, job) and sensor (jobs). A refactor keeps it byte for byte; a deliberate
change of the catalog regenerates it with `MW_UPDATE_SNAPSHOTS=1 pytest tests/test_catalog.py` and the diff
of the JSON file shows the change in review.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "catalog.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    return None if partitions_def is None else str(partitions_def)


def _keys(keys) -> list[str]:
    return sorted(k.to_user_string() for k in keys)


def catalog() -> dict[str, Any]:
    """The catalog of the code location, in a stable, JSON-friendly form."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from market_warehouse.pipelines.definitions import defs

        repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        policy = node.backfill_policy
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": _keys(node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": None if policy is None else policy.policy_type.value,
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or ()),
            "checks": sorted(k.name for k in node.check_keys),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": spec.blocking}
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "assets": _keys(job.asset_layer.executable_asset_keys) if job.asset_layer else [],
            "ops": sorted(node.name for node in job.graph.node_defs),
            "partitions": _partitions(job.partitions_def),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name}
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        s.name: {"jobs": sorted(t.job_name for t in s.targets)}
        for s in sorted(repo.sensor_defs, key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_catalog_matches_snapshot():
    current = catalog()
    text = json.dumps(current, indent=1, sort_keys=True) + "\n"
    if os.environ.get("MW_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), "no catalog snapshot: MW_UPDATE_SNAPSHOTS=1 pytest tests/test_catalog.py"
    assert json.loads(SNAPSHOT.read_text()) == current, (
        "the Dagster catalog changed; if on purpose: MW_UPDATE_SNAPSHOTS=1 pytest tests/test_catalog.py"
    )


def test_catalog_is_complete():
    """The snapshot is not empty by accident: the domains are all there."""
    current = catalog()
    assert {"historical_files", "ohlcv", "features", "equity_curve", "warehouse_stats"} <= set(
        current["assets"]
    )
    assert {"nightly_maintenance", "market_data_job", "derived_job"} <= set(current["jobs"])
    assert current["schedules"] and current["sensors"]
    assert all(a["checks"] for name, a in current["assets"].items() if name in {"ohlcv", "historical_files"})
