"""live capture: capture_gaps, stream_state, market_trades.received_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 18:20:00.000000

The websocket capture service (issue 15): the holes of each stream and what the REST back-fill made of
them, each stream's heartbeat, and the arrival time of a streamed trade next to its exchange time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, postgresql.TIMESTAMP(timezone=True), **kwargs)


def upgrade() -> None:
    op.create_table(
        "capture_gaps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _timestamp("gap_start", nullable=False),
        _timestamp("gap_end", nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("filled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("rows_filled", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        _timestamp("opened_at", server_default=sa.text("now()"), nullable=False),
        _timestamp("closed_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'unfilled', 'unfillable')", name=op.f("ck_capture_gaps_status")
        ),
        sa.CheckConstraint("gap_end IS NULL OR gap_end >= gap_start", name=op.f("ck_capture_gaps_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_gaps")),
    )
    op.create_index(
        "ix_capture_gaps_exchange_symbol_channel_gap_start",
        "capture_gaps",
        ["exchange", "symbol", "channel", "gap_start"],
        unique=False,
    )
    op.create_index("ix_capture_gaps_status", "capture_gaps", ["status"], unique=False)
    op.create_table(
        "stream_state",
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _timestamp("last_exchange_time", nullable=True),
        _timestamp("last_arrival_time", nullable=True),
        _timestamp("last_commit_time", nullable=True),
        sa.Column("rows_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_last_minute", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lag_p50_ms", sa.Float(), nullable=True),
        sa.Column("lag_p99_ms", sa.Float(), nullable=True),
        sa.Column("reconnects", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("updated_at", server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'reconnecting', 'stopped')", name=op.f("ck_stream_state_status")
        ),
        sa.PrimaryKeyConstraint("exchange", "symbol", "channel", name=op.f("pk_stream_state")),
    )
    # Arrival time of a streamed trade (when the service received it); NULL for rows pulled over REST.
    op.add_column("market_trades", _timestamp("received_at", nullable=True))


def downgrade() -> None:
    op.drop_column("market_trades", "received_at")
    op.drop_table("stream_state")
    op.drop_index("ix_capture_gaps_status", table_name="capture_gaps")
    op.drop_index("ix_capture_gaps_exchange_symbol_channel_gap_start", table_name="capture_gaps")
    op.drop_table("capture_gaps")
