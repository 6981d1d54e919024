"""instruments, price kinds of candles, funding rates, open interest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:05:00.000000

Issue 13. `ohlcv` gains `price` ('trade', 'mark', 'index', 'premium_index'; existing rows 'trade') in its
primary key (exchange, symbol, interval, price, time), so the trade, mark and index candles of one
instrument are distinct series. On every backend the aggregates `ohlcv_1h` / `ohlcv_1d` are rebuilt grouped
by price kind (continuous aggregates on TimescaleDB full, rollups elsewhere) and every hour of 1m candles is
queued for the next refresh, as 0003 did. On TimescaleDB full `ohlcv`'s chunks are decompressed (the key and
the segmentby cannot change while chunks are compressed) and its segmentby gains `price`: the maintenance
job compresses the old chunks again on its next run.

New tables: `instruments` (what a ccxt unified symbol is; rows never deleted), `funding_rates` and
`open_interest` (time-series tables like the others: hypertables or range partitions). `cold_pieces.price`
names the price kind of an exported ohlcv file.

The downgrade refuses to run while candles of another price kind than 'trade' exist (the old key cannot
hold them, and no default destroys data): delete them first if that is really meant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from market_warehouse.resources import partitioning
from market_warehouse.resources.backend import Capabilities, detect
from market_warehouse.resources.maintenance.compression import columnstore_api
from market_warehouse.resources.models.base import TimeseriesSpec
from market_warehouse.resources.sqlfiles import run_script, sql_text

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported from the models, so the revision keeps its meaning when the models change.
TIMESERIES = [
    TimeseriesSpec("funding_rates", "time", timedelta(days=30)),
    TimeseriesSpec("open_interest", "time", timedelta(days=7)),
]
PRICE_CHECK = "price IN ('trade', 'mark', 'index', 'premium_index')"


def _timestamp(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, postgresql.TIMESTAMP(timezone=True), **kwargs)


def _price(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, postgresql.DOUBLE_PRECISION(precision=53), **kwargs)


def _drop_aggregates(conn: sa.Connection, caps: Capabilities) -> None:
    if caps.continuous_aggregates:
        run_script(conn, "timescaledb/ohlcv_continuous_aggregates_drop")
    else:
        run_script(conn, "common/ohlcv_rollups_drop")


def _set_ohlcv_key(
    caps: Capabilities,
    columns: list[str],
    aggregates: str,
    columnstore: str,
    reshape: Callable[[], None],
) -> None:
    """Give `ohlcv` the primary key `columns` with the matching aggregates and columnstore settings;
    `reshape` adds or drops columns while no aggregate depends on them and no chunk is compressed."""
    conn = op.get_bind()
    if caps.compression:
        run_script(conn, "timescaledb/ohlcv_columnstore_off")
    _drop_aggregates(conn, caps)
    op.drop_constraint(op.f("pk_ohlcv"), "ohlcv", type_="primary")
    reshape()
    op.create_primary_key(op.f("pk_ohlcv"), "ohlcv", columns)
    run_script(conn, aggregates)
    if caps.compression:
        run_script(conn, columnstore if columnstore_api(caps) else f"{columnstore}_legacy")
    conn.execute(sql_text("common/aggregate_dirty_seed"))


def _add_price() -> None:
    op.add_column("ohlcv", sa.Column("price", sa.Text(), server_default=sa.text("'trade'"), nullable=False))
    op.create_check_constraint(op.f("ck_ohlcv_price"), "ohlcv", PRICE_CHECK)


def _drop_price() -> None:
    op.drop_constraint(op.f("ck_ohlcv_price"), "ohlcv", type_="check")
    op.drop_column("ohlcv", "price")


def upgrade() -> None:
    conn = op.get_bind()
    caps = detect(conn)
    _set_ohlcv_key(
        caps,
        ["exchange", "symbol", "interval", "price", "time"],
        "timescaledb/ohlcv_price_continuous_aggregates"
        if caps.continuous_aggregates
        else "common/ohlcv_price_rollups",
        "timescaledb/ohlcv_columnstore_by_price",
        _add_price,
    )
    op.add_column("cold_pieces", sa.Column("price", sa.Text(), nullable=True))
    conn.execute(sa.text("UPDATE cold_pieces SET price = 'trade' WHERE table_name = 'ohlcv'"))
    _create_instruments()
    kwargs = {spec.table: partitioning.table_kwargs(caps, spec.time_column) for spec in TIMESERIES}
    op.create_table(
        "funding_rates",
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        _timestamp("time", nullable=False),
        _price("rate", nullable=False),
        _price("mark_price", nullable=True),
        _price("index_price", nullable=True),
        sa.Column("interval", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        _timestamp("ingested_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "time", name=op.f("pk_funding_rates")),
        **kwargs["funding_rates"],
    )
    op.create_table(
        "open_interest",
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        _timestamp("time", nullable=False),
        _price("amount", nullable=True),
        _price("value", nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        _timestamp("ingested_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "interval", "time", name=op.f("pk_open_interest")),
        **kwargs["open_interest"],
    )
    for spec in TIMESERIES:
        partitioning.prepare_table(conn, caps, spec)


def _create_instruments() -> None:
    op.create_table(
        "instruments",
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("settle", sa.Text(), nullable=True),
        sa.Column("exchange_symbol", sa.Text(), nullable=True),
        _price("contract_size", nullable=True),
        sa.Column("linear", sa.Boolean(), nullable=True),
        sa.Column("inverse", sa.Boolean(), nullable=True),
        _timestamp("expiry", nullable=True),
        _price("strike", nullable=True),
        sa.Column("option_type", sa.Text(), nullable=True),
        _price("tick_size", nullable=True),
        _price("lot_size", nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _timestamp("first_seen", server_default=sa.text("now()"), nullable=False),
        _timestamp("last_seen", server_default=sa.text("now()"), nullable=False),
        _timestamp("listed_at", nullable=True),
        _timestamp("delisted_at", nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "info",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _timestamp("updated_at", server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("type IN ('spot', 'swap', 'future', 'option')", name=op.f("ck_instruments_type")),
        sa.CheckConstraint(
            "option_type IS NULL OR option_type IN ('call', 'put')", name=op.f("ck_instruments_option_type")
        ),
        sa.CheckConstraint(
            "type = 'spot' OR settle IS NOT NULL", name=op.f("ck_instruments_derivative_settle")
        ),
        sa.PrimaryKeyConstraint("exchange", "symbol", name=op.f("pk_instruments")),
    )


def downgrade() -> None:
    conn = op.get_bind()
    caps = detect(conn)
    others = conn.execute(sql_text("common/ohlcv_price_kinds_other")).all()
    if others:
        found = ", ".join(f"{row.price}: {row.rows} rows" for row in others)
        raise RuntimeError(
            f"downgrade below 0005 refused: ohlcv holds candles of other price kinds than 'trade' ({found}); "
            "the old key (exchange, symbol, interval, time) cannot hold them. Export them, or remove them "
            "first if that is really meant."
        )
    op.drop_table("open_interest")
    op.drop_table("funding_rates")
    op.drop_table("instruments")
    op.drop_column("cold_pieces", "price")
    _set_ohlcv_key(
        caps,
        ["exchange", "symbol", "interval", "time"],
        "timescaledb/ohlcv_continuous_aggregates" if caps.continuous_aggregates else "common/ohlcv_rollups",
        "timescaledb/ohlcv_columnstore_by_series",
        _drop_price,
    )
