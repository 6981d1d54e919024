"""Lineage of the derived assets: which columns feed which (Dagster column lineage), and the inputs of each
day's `lineage` row (upstream partitions with the runs and data versions Dagster recorded for them)."""

from datetime import datetime

import dagster as dg
import sqlalchemy as sa

from market_warehouse.resources.analytics import features, lineage

OHLCV = "ohlcv"
FILES = "historical_files"
# Inputs recorded per upstream day are capped; a longer read (a replay from inception) adds a range entry.
MAX_DAY_ENTRIES = 31

_CANDLE = ["ohlcv.open", "ohlcv.high", "ohlcv.low", "ohlcv.close", "ohlcv.volume"]
COLUMN_LINEAGE = {
    # Made from the feature declarations (each indicator names the candle columns it reads).
    "features": {
        **{column: [f"ohlcv.{c}" for c in inputs] for column, inputs in features.feature_inputs().items()},
        "time": ["ohlcv.time"],
    },
    "forecasts": {
        c: ["ohlcv.close", "ohlcv.time"] for c in ["point", "lower_80", "upper_80", "lower_95", "upper_95"]
    },
    "forecast_accuracy": {
        "actual": ["ohlcv.close"],
        "error": ["ohlcv.close", "forecasts.point"],
        "ml_models.metrics": ["forecasts.point", "forecasts.lower_80", "forecasts.upper_95", "ohlcv.close"],
    },
    "trading_signals": {
        "signal_type": ["ohlcv.close"],
        "strength": ["ohlcv.close"],
        "entry_price": ["ohlcv.close"],
        "execution_price": ["ohlcv.open"],
        "exit_price": ["ohlcv.open", "ohlcv.low", "ohlcv.high"],
        "realized_pnl": _CANDLE,
    },
    "backtest": {
        "trade_history.price": ["ohlcv.open", "ohlcv.low", "ohlcv.high", "trading_signals.signal_type"],
        "trade_history.signal_id": ["trading_signals.id"],
        "backtest_results.sharpe_ratio": ["ohlcv.close", "trading_signals.signal_type"],
        "backtest_results.final_equity": ["ohlcv.close", "trading_signals.realized_pnl"],
    },
    "equity_curve": {
        "cash": ["backtest.price", "backtest.quantity", "backtest.fees"],
        "positions_value": ["backtest.quantity", "ohlcv.close"],
        "equity": ["backtest.price", "backtest.quantity", "backtest.fees", "ohlcv.close"],
    },
    "risk_metrics": {
        "var_95": ["equity_curve.equity"],
        "cvar_95": ["equity_curve.equity"],
        "var_99": ["equity_curve.equity"],
        "cvar_99": ["equity_curve.equity"],
        "sharpe_ratio": ["equity_curve.equity"],
        "max_drawdown": ["equity_curve.equity"],
        "gross_exposure": ["backtest.quantity", "ohlcv.close"],
        "largest_position": ["backtest.quantity", "ohlcv.close"],
        "daily_pnl": ["equity_curve.equity"],
    },
}


def column_lineage(asset: str) -> dg.TableColumnLineage:
    """COLUMN_LINEAGE of the asset ({"column": ["asset.column", ...]}) as Dagster column lineage."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey(a.split(".")[0]), column_name=a.split(".")[1])
                for a in srcs
            ]
            for column, srcs in COLUMN_LINEAGE[asset].items()
        }
    )


def source_entries(
    context: dg.AssetExecutionContext, asset_key: str, start: datetime, end: datetime
) -> list[dict]:
    """Inputs from a source asset: each daily partition read, with the run and data version Dagster
    recorded for it (capped to the last MAX_DAY_ENTRIES days, plus one entry naming the whole range)."""
    days = lineage.days_between(start, end)
    entries = []
    if len(days) > MAX_DAY_ENTRIES:
        entries.append({"asset_key": asset_key, "partition_range": [days[0], days[-1]], "days": len(days)})
        days = days[-MAX_DAY_ENTRIES:]
    for day in days:
        entries.append({"asset_key": asset_key, "partition": day, **dagster_version(context, asset_key, day)})
    return entries


def candle_entries(context: dg.AssetExecutionContext, start: datetime, end: datetime) -> list[dict]:
    """Candles read over [start, end): the ohlcv days, and the landed files (candles may come from files)."""
    return source_entries(context, OHLCV, start, end) + files_entry(context)


def files_entry(context: dg.AssetExecutionContext) -> list[dict]:
    """The landed-files asset (unpartitioned) if it was ever materialized."""
    info = dagster_version(context, FILES, None)
    return [{"asset_key": FILES, "partition": None, **info}] if info["run_id"] else []


def dagster_version(context: dg.AssetExecutionContext, asset_key: str, partition: str | None) -> dict:
    """Data version, run and storage id of the latest materialization of a partition, as Dagster has it."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset_key), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    if not records:  # read from the warehouse, but not materialized by Dagster (e.g. loaded by a script)
        return {"data_version": None, "run_id": None, "materialized": False}
    rec = records[0]
    tags = (rec.asset_materialization.tags if rec.asset_materialization else None) or {}
    return {
        "data_version": tags.get("dagster/data_version"),
        "run_id": rec.run_id,
        "storage_id": rec.storage_id,
    }


def derived_entries(conn: sa.Connection, asset_key: str, days: list[str]) -> list[dict]:
    """Inputs from a derived asset: its lineage rows of the days read (the last MAX_DAY_ENTRIES)."""
    return [lineage.derived_input(conn, asset_key, day) for day in days[-MAX_DAY_ENTRIES:]]
