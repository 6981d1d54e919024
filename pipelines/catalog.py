"""Catalog facts every asset carries in the Dagster UI, applied once to the merged code location.

- **Owners**: who answers for the data (`owners:` of the universe file, `MW_OWNERS` overrides it, comma
  separated; default `team:market-warehouse`). Dagster accepts an e-mail address or `team:<name>`; anything
  else fails at load with the setting's source named, not as an unreadable Dagster error.
- **Code references**: each asset links to the file and line of its definition (`with_source_code_references`);
  with `MW_GIT_URL` (and `MW_GIT_BRANCH`, default `main`) the links point at the repository's web pages
  instead of local paths (`link_code_references_to_git`).
- **Freshness policies**: when an asset is due, derived from the schedule that refreshes it plus a settle
  time (`FRESHNESS`, one row per asset). Dagster's freshness daemon (part of `dagster dev`) shows the state
  on the asset pages; `stale_assets_sensor` (pipelines/defs/observability) reports the stale ones.

Declared here, not in each domain, because they are facts about the catalog as a whole: one place says who
owns what and when it is due, and a test compares the policies with the schedules' crons.
"""

from __future__ import annotations

import inspect
import os
import re
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import dagster as dg
from dagster._core.definitions.external_asset import create_external_asset_from_source_asset
from dagster._core.definitions.source_asset import SourceAsset
from dagster._record import copy

from market_warehouse.pipelines import datasets
from market_warehouse.resources.exchanges.universe import load_universe
from market_warehouse.resources.settings import PROJECT_ROOT, ConfigurationError

OWNERS_ENV = "MW_OWNERS"
DEFAULT_OWNERS = ("team:market-warehouse",)
GIT_URL_ENV = "MW_GIT_URL"
GIT_BRANCH_ENV = "MW_GIT_BRANCH"
_OWNER = re.compile(r"^(team:[\w.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")

# How long after its schedule's tick a run may take (and late candles may arrive) before the asset is late.
SETTLE = timedelta(minutes=30)


def _daily_due(tick: str) -> dg.FreshnessPolicy:
    """Due once a day: materialized between the schedule's tick (`HH:MM` UTC) and the tick plus SETTLE."""
    hours, minutes = (int(p) for p in tick.split(":"))
    deadline = hours * 60 + minutes + int(SETTLE.total_seconds() // 60)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"{deadline % 60} {deadline // 60} * * *", lower_bound_delta=SETTLE, timezone="UTC"
    )


# asset -> its freshness policy, and the schedule whose ticks it follows (checked by tests/test_ui_catalog.py).
# Market data: yesterday's partition, complete, by the 00:15 daily load (the intraday ticks also count).
# Derived: by the 00:45 derived run. Aggregates: hourly refresh at :05, so due within an hour plus SETTLE.
# Stats: the 02:30 nightly chain. historical_files (landing sensor) and coverage_report (on demand) follow
# no clock: no policy, rather than one that is always failing.
MARKET_DATA_DUE = "00:15"
DERIVED_DUE = "00:45"
NIGHTLY_DUE = "02:30"
AGGREGATES_DUE = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=1) + SETTLE, warn_window=timedelta(hours=1) + SETTLE / 3
)
# (policy, the schedule whose ticks it follows): (None, None) for an asset no clock drives.
Due = tuple[dg.FreshnessPolicy | None, str | None]
FRESHNESS_BY_GROUP: dict[str, Due] = {
    "market_data": (_daily_due(MARKET_DATA_DUE), "daily_market_data"),
    "derived": (_daily_due(DERIVED_DUE), "daily_derived"),
}
FRESHNESS_BY_ASSET: dict[str, Due] = {
    "ohlcv_1h": (AGGREGATES_DUE, "aggregate_refresh_schedule"),
    "ohlcv_1d": (AGGREGATES_DUE, "aggregate_refresh_schedule"),
    "warehouse_stats": (_daily_due(NIGHTLY_DUE), "nightly_maintenance_schedule"),
    "historical_files": (None, None),
    "coverage_report": (None, None),
}


def freshness_of(spec: dg.AssetSpec) -> Due:
    """The asset's policy and the schedule it follows: its own row, else its group's, else none."""
    if spec.key.to_user_string() in FRESHNESS_BY_ASSET:
        return FRESHNESS_BY_ASSET[spec.key.to_user_string()]
    return FRESHNESS_BY_GROUP.get(spec.group_name or "", (None, None))


def owners() -> list[str]:
    """Owners of every asset: `MW_OWNERS`, else the universe file's `owners:`, else DEFAULT_OWNERS."""
    from_env = os.environ.get(OWNERS_ENV)
    if from_env:
        values, source = [v.strip() for v in from_env.split(",") if v.strip()], OWNERS_ENV
    else:
        universe = load_universe()
        raw = universe.settings.get("owners", list(DEFAULT_OWNERS))
        values, source = ([raw] if isinstance(raw, str) else list(raw)), f"{universe.path}: owners"
    bad = [v for v in values if not isinstance(v, str) or not _OWNER.match(v)]
    if bad or not values:
        raise ConfigurationError(
            f"{source} must list e-mail addresses or team:<name> entries, not {bad or values!r}"
        )
    return values


def _with_facts(spec: dg.AssetSpec, team: Sequence[str], fn: Callable) -> dg.AssetSpec:
    policy, _schedule = freshness_of(spec)
    refs = code_references(fn, spec.key.to_user_string())
    return spec.replace_attributes(
        owners=[*spec.owners, *(o for o in team if o not in spec.owners)],
        freshness_policy=spec.freshness_policy or policy,
        metadata={
            **spec.metadata,
            "dagster/code_references": dg.CodeReferencesMetadataValue(code_references=refs),
        },
    )


def _source(obj: object, label: str) -> dg.LocalFileCodeReference:
    """Where a function or class of the project is written (decorators unwrapped)."""
    target = inspect.unwrap(obj)  # type: ignore[arg-type]
    return dg.LocalFileCodeReference(
        file_path=str(Path(inspect.getsourcefile(target) or "").resolve()),
        line_number=inspect.getsourcelines(target)[1],
        label=label,
    )


def _declaration(asset: str) -> dg.LocalFileCodeReference | None:
    """The asset's row in pipelines/datasets.py (its table, description and kinds), if it has one."""
    path = Path(datasets.__file__).resolve()
    lines = path.read_text().splitlines()
    starts = (f'_market("{asset}"', f'_derived("{asset}"', f'Dataset("{asset}"')
    for number, (before, line) in enumerate(zip(["", *lines], lines, strict=False), start=1):
        row = line.strip()
        if row.startswith(starts) or (
            before.strip() in ("Dataset(", "_market(", "_derived(") and row == f'"{asset}",'
        ):
            return dg.LocalFileCodeReference(file_path=str(path), line_number=number, label="declaration")
    return None


# The package these modules are imported as ("market_warehouse.pipelines."): a class defined in it is ours.
_PIPELINES = __name__.rpartition(".")[0] + "."


def code_references(fn: Callable, asset: str) -> list[dg.LocalFileCodeReference]:
    """The asset's links to its source: the function Dagster runs (`fn`, unwrapped from the retry decorator);
    for a factory-made asset, the project class it was made from (a derived asset's steps); and its
    declaration row in pipelines/datasets.py. Dagster's `with_source_code_references` would link the
    retry wrapper's or the factory's line, the same for every asset they make."""
    refs = [_source(fn, "definition")]
    closure = [cell.cell_contents for cell in getattr(inspect.unwrap(fn), "__closure__", None) or ()]
    refs += [
        _source(c, "computation")
        for c in closure
        if isinstance(c, type) and c.__module__.startswith(_PIPELINES)
    ]
    declared = _declaration(asset)
    return refs + ([declared] if declared else [])


def _in_repository(assets: Sequence) -> Sequence:
    """With `MW_GIT_URL`: the local file links turned into the repository's web links."""
    git_url = os.environ.get(GIT_URL_ENV)
    if not git_url:
        return assets
    return dg.link_code_references_to_git(
        assets,
        git_url=git_url,
        git_branch=os.environ.get(GIT_BRANCH_ENV, "main"),
        file_path_mapping=dg.AnchorBasedFilePathMapping(
            local_file_anchor=PROJECT_ROOT / "pyproject.toml", file_anchor_path_in_repository="pyproject.toml"
        ),
    )


def with_catalog_facts(defs: dg.Definitions) -> dg.Definitions:
    """The code location with owners, code references and freshness policies on every asset."""
    team = owners()
    with warnings.catch_warnings():
        # Code references are "beta" in Dagster 1.13: known and chosen (a warning per asset at every load of
        # the code location would flood the UI's logs).
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _with_facts_on_all(defs, team)


def _body(asset: object) -> tuple[dg.AssetsDefinition, Callable] | None:
    """The asset as an AssetsDefinition (an observable source asset converted, as Definitions would) and
    the function of ours that it runs; None for what has no function (plain specs)."""
    if isinstance(asset, SourceAsset) and asset.observe_fn is not None:
        return create_external_asset_from_source_asset(asset), asset.observe_fn
    if isinstance(asset, dg.AssetsDefinition) and asset.is_executable:
        fn = asset.op.compute_fn
        return asset, getattr(fn, "decorated_fn", fn)
    return None


def _with_facts_on_all(defs: dg.Definitions, team: Sequence[str]) -> dg.Definitions:
    assets = []
    for asset in defs.assets or []:
        body = _body(asset)
        if body is None:
            assets.append(asset)
            continue
        assets_def, fn = body
        assets.append(assets_def.map_asset_specs(lambda spec, fn=fn: _with_facts(spec, team, fn)))
    return copy(defs, assets=_in_repository(assets))
