"""aggregate dirty windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Hour buckets touched by upserts, consumed by the incremental refresh of aggregates.
    op.create_table(
        "aggregate_dirty_windows",
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("bucket_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "extract(epoch FROM bucket_start) % 3600 = 0",
            name=op.f("ck_aggregate_dirty_windows_hour_aligned"),
        ),
        sa.PrimaryKeyConstraint("table_name", "bucket_start", name=op.f("pk_aggregate_dirty_windows")),
    )


def downgrade() -> None:
    op.drop_table("aggregate_dirty_windows")
