"""Dagster metadata describing warehouse tables, shared by every asset that writes one."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from market_warehouse.pipelines.column_docs import column_doc
from market_warehouse.resources.models import Base

# The aggregates `ohlcv_1h` / `ohlcv_1d` (views over continuous aggregates or rollup tables, no SQLAlchemy
# model): the candle columns they keep from ohlcv, around their bucket (sql/common/ohlcv_rollup_1h_insert.sql).
AGGREGATE_KEY = ("exchange", "symbol", "price", "bucket")
AGGREGATE_VALUES = ("open", "high", "low", "close", "volume", "quote_volume", "trades_count", "vwap")
AGGREGATES = ("ohlcv_1h", "ohlcv_1d")


def _column(table: str, column: sa.Column) -> dg.TableColumn:
    return dg.TableColumn(
        name=column.name,
        type=str(column.type).lower(),
        description=column_doc(table, column.name, column.comment or column.doc),
        constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
    )


def _aggregate_schema(name: str) -> dg.TableSchema:
    """An aggregate's columns: ohlcv's key and values (same types and meanings) plus bucket and count."""
    ohlcv = Base.metadata.tables["ohlcv"].columns
    extra = {
        "bucket": sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        "candle_count": sa.Column("candle_count", sa.BigInteger, nullable=False),
    }
    names = [*AGGREGATE_KEY, *AGGREGATE_VALUES, "candle_count"]
    return dg.TableSchema(
        columns=[_column(name, extra.get(n, ohlcv.get(n))) for n in names],
        constraints=dg.TableConstraints(other=[f"unique ({', '.join(AGGREGATE_KEY)})"]),
    )


def table_schema(table_name: str) -> dg.TableSchema:
    """The warehouse table's columns and key as the Dagster UI shows them, from the SQLAlchemy model (the
    aggregates from ohlcv's), each column described (pipelines/column_docs.py)."""
    if table_name in AGGREGATES:
        return _aggregate_schema(table_name)
    table = Base.metadata.tables[table_name]
    key = ", ".join(c.name for c in table.primary_key.columns)
    return dg.TableSchema(
        columns=[_column(table_name, column) for column in table.columns],
        constraints=dg.TableConstraints(other=[f"primary key ({key})"]),
    )


def table_metadata(table_name: str) -> dict[str, object]:
    """The definition metadata of an asset that writes `table_name`: its name and column schema in the UI."""
    return {"dagster/table_name": f"public.{table_name}", "dagster/column_schema": table_schema(table_name)}
