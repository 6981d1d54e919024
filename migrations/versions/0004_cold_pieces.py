"""cold_pieces: the manifest of the Parquet cold tier

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:10:00.000000

One row per Parquet file that retention exported before dropping its rows (issue 16).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, postgresql.TIMESTAMP(timezone=True), **kwargs)


def upgrade() -> None:
    op.create_table(
        "cold_pieces",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("piece", sa.Text(), nullable=False),
        _timestamp("range_start", nullable=False),
        _timestamp("range_end", nullable=False),
        sa.Column("exchange", sa.Text(), nullable=True),
        sa.Column("symbol", sa.Text(), nullable=True),
        sa.Column("interval", sa.Text(), nullable=True),
        sa.Column("month", sa.Text(), nullable=False),
        _timestamp("min_time", nullable=False),
        _timestamp("max_time", nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        _timestamp("exported_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cold_pieces")),
        sa.UniqueConstraint("root", "path", name=op.f("uq_cold_pieces_root_path")),
    )
    op.create_index(
        "ix_cold_pieces_series",
        "cold_pieces",
        ["table_name", "exchange", "symbol", "interval", "min_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_cold_pieces_series", table_name="cold_pieces")
    op.drop_table("cold_pieces")
