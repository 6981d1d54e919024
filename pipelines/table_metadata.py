"""Dagster metadata describing warehouse tables, shared by every asset that writes one."""

from __future__ import annotations

import dagster as dg

from resources.models import Base


def table_schema(table_name: str) -> dg.TableSchema:
    """The warehouse table's columns and key as the Dagster UI shows them, from the SQLAlchemy model."""
    table = Base.metadata.tables[table_name]
    key = ", ".join(c.name for c in table.primary_key.columns)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type).lower(),
                description=column.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for column in table.columns
        ],
        constraints=dg.TableConstraints(other=[f"primary key ({key})"]),
    )


def table_metadata(table_name: str) -> dict[str, object]:
    """The definition metadata of an asset that writes `table_name`: its name and column schema in the UI."""
    return {"dagster/table_name": f"public.{table_name}", "dagster/column_schema": table_schema(table_name)}
