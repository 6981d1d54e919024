"""Reading the hourly and daily OHLCV aggregates: which relation serves an interval, and queries on it.

The relations `ohlcv_1h` / `ohlcv_1d` exist on every backend (continuous aggregates on TimescaleDB,
views on rollup tables elsewhere; `resources.maintenance.aggregates` keeps them fresh). Reads of candles
(`resources.warehouse.ops.market`) and of price statistics use them through this module, which sits in the
warehouse layer so that reads never import maintenance.
"""

from __future__ import annotations

import sqlalchemy as sa

from market_warehouse.resources.sqlfiles import load_sql

_AGGREGATE_TABLES = {"1h": "ohlcv_1h", "1d": "ohlcv_1d"}


def aggregate_table_for(interval: str) -> str | None:
    """The aggregate serving candles of `interval` ('1h' -> 'ohlcv_1h', '1d' -> 'ohlcv_1d'), else None."""
    return _AGGREGATE_TABLES.get(interval)


def aggregate_query(interval: str, name: str = "common/get_ohlcv_aggregate") -> sa.TextClause | None:
    """A query on the aggregate of `interval` (None if there is none): `sql/<name>.sql` with its
    `{aggregate}` placeholder set to the relation, taken from the closed mapping above, never from a caller.

    The default, `common/get_ohlcv_aggregate`, takes the parameters of `common/get_ohlcv` (:exchange,
    :symbol, :interval, :price, :start, :end, :limit: the aggregates are per price kind) and returns its
    columns plus candle_count;
    `common/price_stats_aggregate` mirrors `common/price_stats`.
    """
    table = aggregate_table_for(interval)
    if table is None:
        return None
    return sa.text(load_sql(name).replace("{aggregate}", table))
