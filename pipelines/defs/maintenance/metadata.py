"""What the maintenance ops and assets share: asset keys, policy config, and how results become metadata."""

# No `from __future__ import annotations`: Dagster reads the config types of the op signatures.
import dagster as dg

from resources.maintenance import aggregates, stats
from resources.maintenance.plan import MaintenancePlan
from resources.maintenance.retention import PieceAction

OHLCV = dg.AssetKey("ohlcv")
OHLCV_1H = dg.AssetKey("ohlcv_1h")
OHLCV_1D = dg.AssetKey("ohlcv_1d")
WAREHOUSE_STATS = dg.AssetKey("warehouse_stats")
GROUP = "maintenance"


class PolicyConfig(dg.Config):
    """Which universe file's `maintenance:` section applies (empty: MW_UNIVERSE, else the shipped one)."""

    universe: str | None = None


# The nightly ops that read the policy: give them all the same `PolicyConfig` (the plan must see the policy
# the steps apply).
POLICY_OPS = ("plan_maintenance", "compress_chunks", "apply_retention")


def aggregate_events(result: aggregates.RefreshResult) -> list[dg.AssetMaterialization]:
    common = result.metadata()
    return [
        dg.AssetMaterialization(asset_key=OHLCV_1H, metadata={**common, "rows_rebuilt": result.rows_1h}),
        dg.AssetMaterialization(asset_key=OHLCV_1D, metadata={**common, "rows_rebuilt": result.rows_1d}),
    ]


_PIECE_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("table", "string"),
        dg.TableColumn("piece", "string", description="chunk or partition"),
        dg.TableColumn("action", "string", description="dropped, or rows deleted (some intervals of ohlcv)"),
        dg.TableColumn("intervals", "string", description="expired candle intervals (ohlcv), else all"),
        dg.TableColumn("range_start", "string"),
        dg.TableColumn("range_end", "string"),
        dg.TableColumn("rows", "int", description="counted just before the drop"),
        dg.TableColumn("bytes", "int", description="size of a dropped piece; empty for deleted rows"),
    ]
)


def pieces_table(actions: list[PieceAction]) -> dg.TableMetadataValue:
    """Pieces dropped (or to drop) as a metadata table, one record per chunk/partition."""
    records = []
    for action in actions:
        record = action.record()
        records.append(dg.TableRecord({c.name: record[c.name] for c in _PIECE_COLUMNS.columns}))
    return dg.MetadataValue.table(records=records, schema=_PIECE_COLUMNS)


def plan_metadata(plan: MaintenancePlan) -> dict[str, object]:
    """The plan as run metadata: the readable text, counts, the pieces to drop, and everything as JSON."""
    return {
        "plan": dg.MetadataValue.md(plan.markdown()),
        **plan.summary(),
        "to_drop": pieces_table(plan.drops),
        "plan_json": dg.MetadataValue.json(plan.as_dict()),
    }


def stats_metadata(measured: stats.WarehouseStats) -> dict[str, object]:
    return {
        "tables": dg.MetadataValue.md(measured.markdown()),
        "backend": measured.backend,
        "seconds": round(measured.seconds, 3),
        **measured.numeric(),
    }
