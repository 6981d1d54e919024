"""SQL used only by the benchmarks (fixtures built server-side, baselines, scratch-table resets).

It lives in `benchmarks/sql/`, not in the product's `sql/common/`, so that `sql/` holds only what the
warehouse runs. Loaded by the project's own loader with this folder as its root.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from market_warehouse.resources.sqlfiles import load_sql, sql_text

BENCH_SQL_DIR = Path(__file__).resolve().with_name("sql")


def bench_sql(name: str) -> str:
    """Text of `benchmarks/sql/<name>.sql` (for statements formatted with psycopg2's `sql` first)."""
    return load_sql(name, BENCH_SQL_DIR)


def bench_text(name: str) -> sa.TextClause:
    """A statement of `benchmarks/sql/<name>.sql` with `:named` bind parameters."""
    return sql_text(name, BENCH_SQL_DIR)
