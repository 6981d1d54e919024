"""Operations on derived analytics (`resources.models.analytics`): stored feature frames."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import pyarrow as pa

from market_warehouse.resources.intervals import validate_interval
from market_warehouse.resources.models.analytics import FEATURE_COLUMNS, Feature
from market_warehouse.resources.warehouse.ops.common import Source, bounds, checked_limit
from market_warehouse.resources.warehouse.ops.frames import concat, read_schema, read_series, symbols_of
from market_warehouse.resources.warehouse.records import (
    frame_from_arrow,
)

# A frame of stored features: the row's key, then the values.
FEATURE_FRAME_COLUMNS = (*(column.name for column in Feature.__table__.primary_key.columns), *FEATURE_COLUMNS)


def get_features_frame(
    conn: Source,
    exchange: str,
    symbol: str | Sequence[str],
    interval: str,
    feature_set: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    *,
    as_arrow: bool = False,
) -> pd.DataFrame | pa.Table:
    """Stored features of `feature_set` for one series, or many in one query (ordered by symbol then
    time, `limit` per series), time in [start, end), as a DataFrame or an Arrow table (`as_arrow=True`).
    Read like `get_ohlcv_frame`."""
    lo, hi = bounds(start, end)
    params = {
        "exchange": exchange,
        "interval": validate_interval(interval),
        "feature_set": feature_set,
        "start": lo,
        "end": hi,
        "limit": checked_limit(limit),
    }
    schema = read_schema("features", FEATURE_FRAME_COLUMNS)
    symbols = symbols_of(symbol)
    tables = read_series(conn, "common/get_features_frame", params, symbols, schema, columns=FEATURE_COLUMNS)
    table = concat(tables, schema)
    return table if as_arrow else frame_from_arrow(table)
