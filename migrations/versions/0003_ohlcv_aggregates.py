"""ohlcv aggregates, columnstore settings, retention helpers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:30:00.000000

Backend-specific objects, none of them in the models (hidden from autogenerate in migrations/env.py):
- TimescaleDB full: continuous aggregates `ohlcv_1h`, `ohlcv_1d` (1d on 1h) and columnstore settings of the
  market-data hypertables;
- TimescaleDB Apache-only and plain PostgreSQL: rollup tables in schema `mw_aggregates`, exposed as the
  views `ohlcv_1h`, `ohlcv_1d`;
- plain PostgreSQL: `mw_drop_partition` (detach + drop) for retention.
Existing 1m candles are queued in `aggregate_dirty_windows`: the next refresh builds their buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from market_warehouse.resources.backend import detect
from market_warehouse.resources.sqlfiles import run_script, sql_text

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# TimescaleDB renamed compression to columnstore in 2.18 (ALTER TABLE … SET (timescaledb.enable_columnstore)).
COLUMNSTORE_SYNTAX = (2, 18)


def _columnstore_syntax(version: str | None) -> bool:
    parts = tuple(int(p) for p in (version or "0").split("-")[0].split(".")[:2] if p.isdigit())
    return parts >= COLUMNSTORE_SYNTAX


def upgrade() -> None:
    conn = op.get_bind()
    caps = detect(conn)
    if caps.continuous_aggregates:
        run_script(conn, "timescaledb/ohlcv_continuous_aggregates")
    else:
        run_script(conn, "common/ohlcv_rollups")
    if caps.compression:
        if _columnstore_syntax(caps.timescaledb_version):
            run_script(conn, "timescaledb/columnstore_settings")
        else:
            run_script(conn, "timescaledb/compression_settings_legacy")
    if caps.native_partitions:
        run_script(conn, "postgres/retention")
    conn.execute(sql_text("common/aggregate_dirty_seed"))


def downgrade() -> None:
    conn = op.get_bind()
    caps = detect(conn)
    if caps.native_partitions:
        run_script(conn, "postgres/retention_drop")
    if caps.compression:
        run_script(conn, "timescaledb/compression_settings_off")
    if caps.continuous_aggregates:
        run_script(conn, "timescaledb/ohlcv_continuous_aggregates_drop")
    else:
        run_script(conn, "common/ohlcv_rollups_drop")
