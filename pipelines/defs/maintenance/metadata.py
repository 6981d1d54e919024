"""What the maintenance ops and assets share: asset keys, policy config, and how results become metadata."""

# No `from __future__ import annotations`: Dagster reads the config types of the op signatures.
import dagster as dg

from market_warehouse.resources.maintenance import aggregates, stats
from market_warehouse.resources.maintenance.plan import MaintenancePlan
from market_warehouse.resources.maintenance.retention import PieceAction

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


STATS_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("table", "string"),
        dg.TableColumn(
            "kind", "string", description="hypertable, partitioned, regular, rollup, continuous aggregate"
        ),
        dg.TableColumn("rows", "int", description="planner estimate after ANALYZE"),
        dg.TableColumn("bytes", "int", description="total size with indexes and TOAST"),
        dg.TableColumn("pieces", "int", description="chunks or partitions"),
        dg.TableColumn(
            "compression_ratio", "float", description="bytes before / after, compressed chunks only"
        ),
        dg.TableColumn("oldest", "string", description="earliest time of a time-series table, UTC"),
        dg.TableColumn("newest", "string", description="latest time of a time-series table, UTC"),
    ]
)


def _when(moment) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def stats_table(measured: stats.WarehouseStats) -> dg.TableMetadataValue:
    """The tables' size and shape as one metadata table, largest first: every time-series table and
    aggregate, and the other tables that hold rows (the empty bookkeeping tables would bury them)."""
    records = [
        dg.TableRecord(
            {
                "table": t.table_name,
                "kind": t.kind,
                "rows": t.row_estimate,
                "bytes": t.total_bytes,
                "pieces": t.pieces,
                "compression_ratio": round(t.compression_ratio, 3) if t.compression_ratio else None,
                "oldest": _when(t.oldest),
                "newest": _when(t.newest),
            }
        )
        for t in sorted(measured.shown(), key=lambda t: -t.total_bytes)
    ]
    return dg.MetadataValue.table(records=records, schema=STATS_COLUMNS)


def stats_metadata(measured: stats.WarehouseStats) -> dict[str, object]:
    """The stats as one table plus the totals a plot of the asset's history can follow."""
    return {
        "tables": stats_table(measured),
        "backend": measured.backend,
        "seconds": round(measured.seconds, 3),
        "total_bytes": sum(t.total_bytes for t in measured.tables),
        "total_rows": sum(t.row_estimate for t in measured.tables),
    }
