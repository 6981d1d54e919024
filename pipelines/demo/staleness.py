"""Which assets below the sources the demo's second run materializes (a re-run with nothing new runs none)."""

from __future__ import annotations

import dagster as dg


def source_keys(graph) -> set[dg.AssetKey]:
    """The assets that read the outside world (landed files, exchanges): always asked again."""
    from market_warehouse.pipelines.defs.market_data import MARKET_DATA_ASSETS

    return {dg.AssetKey(name) for name in ["historical_files", *MARKET_DATA_ASSETS]} & set(
        graph.get_all_asset_keys()
    )


def _current(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, code_version) -> bool:
    """Materialized (this partition) by the current code version."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return False
    tags = records[0].asset_materialization.tags or {}
    return tags.get("dagster/code_version") == code_version


def stale_downstream(
    instance: dg.DagsterInstance, defs: dg.Definitions, partitions: list[str], *, sources_wrote: bool
) -> set[dg.AssetKey]:
    """Assets below the sources to materialize: all of them when the sources wrote rows, else those with a
    window partition never materialized by the current code version, and everything downstream of them.

    Derived assets are functions of the warehouse's rows, their code and their settings: when no source
    row changed and every partition exists at the current code version, running them again would only
    recompute the same rows (which the loads would then skip).
    """
    graph = defs.resolve_asset_graph()
    # Observable assets (the live capture's `live_capture`) are observed, never materialized: never stale here.
    below = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable} - source_keys(graph)
    if sources_wrote:
        return below
    stale = set()
    for key in below:
        node = graph.get(key)
        wanted = partitions if node.is_partitioned else [None]
        if not all(_current(instance, key, p, node.code_version) for p in wanted):
            stale.add(key)
    if not stale:
        return set()
    selected = dg.AssetSelection.assets(*stale).downstream().resolve(graph) & below
    # A multi-asset (ohlcv_1h + ohlcv_1d) runs as a whole.
    return {k for key in selected for k in graph.get(key).execution_set_asset_keys} & below
