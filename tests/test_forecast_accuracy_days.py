"""forecast_accuracy scores a day only once it is complete (issue 12, point 6).

An asset backfill of forecasts over D1..D2 brings forecast_accuracy's D1+1..D2+1 in (its partition D reads
forecasts' D-1); when D2 is yesterday that includes today, whose candles are still coming. Such a day is
not filled or scored, and its materialization says why; the same day, once complete, is scored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.defs.derived import (
    AnalyticsResource,
    forecast_accuracy_asset,
    forecasts_asset,
)
from market_warehouse.pipelines.partitions import partitions_at_clock
from market_warehouse.resources import clock
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from tests.universes import SYNTHETIC_UNIVERSE, universe_file


def _run(assets, resources, partition: str, at: datetime) -> dict:
    with clock.frozen(at), partitions_at_clock():
        result = dg.materialize(assets, resources=resources, partition_key=partition)
    assert result.success
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "forecast_accuracy"
    ]
    return (
        {k: getattr(v, "value", v) for k, v in events[0].materialization.metadata.items()} if events else {}
    )


def _actuals(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM forecasts WHERE actual IS NOT NULL")).scalar_one()


def test_today_is_not_scored_and_the_complete_day_is(db_url, tmp_path, engine):
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE)),
        "analytics": AnalyticsResource(),
    }
    noon = datetime(2024, 3, 2, 12, tzinfo=UTC)
    _run([market_data.ohlcv], resources, "2024-02-29", noon)  # training history (30 bars at least)
    _run([market_data.ohlcv, forecasts_asset], resources, "2024-03-01", noon)  # forecasts into 03-02
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM forecasts")).scalar_one() > 0
    today = _run([market_data.ohlcv, forecast_accuracy_asset], resources, "2024-03-02", noon)
    assert today["dagster/row_count"] == 0 and today["rows_written"] == 0
    assert today["note"].startswith("not scored: the day ends 2024-03-03T00:00:00+00:00, after now")
    assert _actuals(engine) == 0  # candles until noon are stored, yet nothing partial was filled

    after = datetime(2024, 3, 3, 0, 5, tzinfo=UTC)
    complete = _run([market_data.ohlcv, forecast_accuracy_asset], resources, "2024-03-02", after)
    assert "note" not in complete and complete["dagster/row_count"] > 0
    assert _actuals(engine) == complete["dagster/row_count"]
