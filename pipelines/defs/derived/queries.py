"""The derived assets' own reads of the warehouse (SQL in `sql/common/derived_*.sql`), typed by the models.

The analytics reads (candles, equity, fills) live with their computations in `resources/analytics/`; these
are the few the assets need for their metadata: row counts, the forecast runs scored, and what the
forecast and equity plots draw. Each statement's columns take their types from the SQLAlchemy model, so times come
back in UTC and floats as floats, as the model reads them.
"""

from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.analytics import lineage
from market_warehouse.resources.models import Base
from market_warehouse.resources.sqlfiles import sql_text


def _typed(name: str, table: str, *columns: str) -> sa.TextClause:
    """`sql/common/<name>.sql` with its result columns typed as the model's `table` columns."""
    t = Base.metadata.tables[table]
    return sql_text(f"common/{name}").columns(*(t.c[c] for c in columns))


def count_features(conn: sa.Connection, start: datetime, end: datetime, feature_set: str) -> int:
    """Feature rows of one feature set in [start, end)."""
    params = {"start": start, "end": end, "feature_set": feature_set}
    return int(conn.scalar(sql_text("common/derived_count_features"), params))


def count_forecasts(conn: sa.Connection, start: datetime, end: datetime) -> int:
    """Forecast rows of the runs generated for the day [start, end): generated in (start, end]."""
    tick = timedelta(microseconds=1)
    params = {"start": start + tick, "end": end + tick}
    return int(conn.scalar(sql_text("common/derived_count_forecasts"), params))


def count_signals(conn: sa.Connection, start: datetime, end: datetime, strategy: str) -> int:
    """Signals of one strategy in [start, end)."""
    params = {"start": start, "end": end, "strategy": strategy}
    return int(conn.scalar(sql_text("common/derived_count_trading_signals"), params))


def generated_days(conn: sa.Connection, model_ids: list[int]) -> list[str]:
    """Partitions of `forecasts` that produced these model runs."""
    if not model_ids:
        return []
    query = _typed("derived_forecast_generated", "forecasts", "generated_at")
    times = conn.scalars(query, {"model_ids": list(model_ids)})
    # a run generated at D+1 00:00 was trained on day D: it belongs to forecasts' partition D
    return sorted({lineage.partition_of(t - timedelta(microseconds=1)) for t in times})


def scored_rows(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """Forecast rows with a target time in [start, end) and a known actual."""
    columns = ("model_id", "symbol", "interval", "generated_at", "target_time", "point", "actual", "error")
    query = _typed("derived_forecast_scored", "forecasts", *columns)
    return pd.DataFrame(conn.execute(query, {"start": start, "end": end}).mappings().all())


def forecast_run(conn: sa.Connection, model_id: int) -> sa.Row:
    """(exchange, symbol, interval, generated_at) of one model run."""
    query = _typed("derived_forecast_run", "forecasts", "exchange", "symbol", "interval", "generated_at")
    return conn.execute(query, {"model_id": model_id}).one()


def run_forecasts(conn: sa.Connection, run: sa.Row) -> pd.DataFrame:
    """Every model's forecasts (kind, target_time, point, 95 % band) of the run's series and instant."""
    t = Base.metadata.tables
    query = sql_text("common/derived_forecast_run_models").columns(
        t["ml_models"].c.kind,
        *(t["forecasts"].c[c] for c in ("target_time", "point", "lower_95", "upper_95")),
    )
    return pd.DataFrame(conn.execute(query, run._asdict()).mappings().all())


def close_history(conn: sa.Connection, run: sa.Row, start: datetime, end: datetime) -> pd.DataFrame:
    """Closes of the run's series in [start, end)."""
    query = _typed("derived_close_history", "ohlcv", "time", "close")
    params = {
        "exchange": run.exchange,
        "symbol": run.symbol,
        "interval": run.interval,
        "start": start,
        "end": end,
    }
    return pd.DataFrame(conn.execute(query, params).all(), columns=["time", "close"])
