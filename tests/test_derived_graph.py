"""The whole derived graph on two days of synthetic exchange data: every table filled, values checked
against independent computations, re-runs write nothing, and lineage leads from a risk figure back to the
exchange responses it came from."""

from __future__ import annotations

import base64
import textwrap
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs import derived
from market_warehouse.pipelines.defs.derived import DERIVED_ASSETS, AnalyticsResource
from market_warehouse.pipelines.defs.market_data import ohlcv
from market_warehouse.pipelines.partitions import DAILY, WAREHOUSE_POOL
from market_warehouse.resources.analytics import features, lineage, strategy
from market_warehouse.resources.analytics.backtest import Series, performance
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.warehouse.api import Warehouse

UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 5
    symbols: [BTC/USDT, ETH/USDT]
    intervals: [1m, 1h]
    orderbook_depth: 5
"""
DAYS = ["2024-03-01", "2024-03-02"]
D1 = datetime(2024, 3, 1, tzinfo=UTC)
D2, END = D1 + timedelta(days=1), D1 + timedelta(days=2)
ANALYTICS = AnalyticsResource(
    forecast_intervals=["1m"],
    forecast_horizon=30,
    forecast_training_bars=240,
    strategy_inception="2024-03-01",
    fast=3,
    slow=8,
    stop_loss=0.004,
    take_profit=0.006,
)


def _count(conn, query: str, **params) -> int:
    return conn.execute(sa.text(query), params).scalar_one()


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: getattr(v, "value", v) for k, v in events[0].materialization.metadata.items()}


@pytest.fixture(scope="module")
def graph(tmp_path_factory, template_url):
    """Materialize ohlcv + every derived asset for day 1, then day 2, then day 2 again."""
    from market_warehouse.resources.database import drop_database
    from tests.databases import TEMPLATE_DB, create_database

    url = create_database(template_url, f"t_derived_{id(tmp_path_factory)}", template=TEMPLATE_DB)
    path = tmp_path_factory.mktemp("universe") / "universe.yaml"
    path.write_text(textwrap.dedent(UNIVERSE))
    resources = {
        "warehouse": WarehouseResource(database_url=url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=str(path)),
        "analytics": ANALYTICS,
    }
    instance = dg.DagsterInstance.ephemeral()
    runs = [
        dg.materialize([ohlcv, *DERIVED_ASSETS], partition_key=day, resources=resources, instance=instance)
        for day in [*DAYS, DAYS[1]]
    ]
    yield resources["warehouse"].engine(), runs
    resources["warehouse"].engine().dispose()
    drop_database(url)


def test_definitions_follow_the_contract():
    from market_warehouse.pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for asset in DERIVED_ASSETS:
        key = asset.key
        assert asset.partitions_def == DAILY and asset.op.pool == WAREHOUSE_POOL
        assert asset.group_names_by_key[key] == "derived" and asset.code_versions_by_key[key]
        assert "dagster/column_schema" in asset.metadata_by_key[key]
        assert graph.get(key).parent_keys, f"{key} declares no upstream"
    upstream = graph.get(dg.AssetKey("risk_metrics")).parent_keys
    assert upstream >= {dg.AssetKey("equity_curve"), dg.AssetKey("backtest"), dg.AssetKey("ohlcv")}
    assert dg.AssetKey("ohlcv") in graph.get(dg.AssetKey("features")).parent_keys
    assert defs.resolve_job_def("derived_job")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 3, 0, 45, tzinfo=UTC))
    request = derived.daily_derived(context)
    assert request.partition_key == "2024-03-02" and request.run_key == "derived-2024-03-02"


def test_every_table_is_filled(graph):
    engine, runs = graph
    assert all(r.success for r in runs)
    with engine.connect() as conn:
        for day, nxt in [(D1, D2), (D2, END)]:
            window = {"a": day, "b": nxt}
            assert _count(
                conn, "select count(*) from features where time >= :a and time < :b", **window
            ) == 2 * (1440 + 24)
            assert (
                _count(conn, "select count(*) from trading_signals where time >= :a and time < :b", **window)
                > 0
            )
            assert (
                _count(conn, "select count(*) from equity_curve where time >= :a and time < :b", **window) > 0
            )
            assert (
                _count(conn, "select count(*) from risk_metrics where time >= :a and time < :b", **window) > 0
            )
        # 2 symbols x 3 models x 2 days, 30 steps each
        assert _count(conn, "select count(*) from ml_models") == 12
        assert _count(conn, "select count(*) from forecasts") == 12 * 30
        # forecasts made at the end of day 1 meet their actuals on day 2
        assert _count(conn, "select count(*) from forecasts where actual is not null") == 6 * 30
        assert _count(conn, "select count(*) from ml_models where metrics ? 'mae'") == 6
        assert _count(conn, "select count(*) from backtest_results") == 2 * 2
        assert _count(conn, "select count(*) from trade_history") > 0
        assert _count(conn, "select count(*) from lineage") == 7 * 3


def test_metadata_has_plots_schema_and_lineage(graph):
    engine, runs = graph
    for asset, key in [("equity_curve", "equity_curve_plot"), ("forecast_accuracy", "forecasts_vs_actuals")]:
        md = _meta(runs[1], asset)[key]
        prefix = "data:image/png;base64,"
        png = base64.b64decode(md[md.index(prefix) + len(prefix) : md.rindex(")")])
        assert png.startswith(b"\x89PNG") and len(png) > 5_000, asset
    # ... and a sparkline short enough for the UI to render inline (issue 12, point 7)
    for asset, key in [("equity_curve", "equity_curve"), ("forecast_accuracy", "forecasts")]:
        md = _meta(runs[1], asset)[key]
        assert md.startswith("![") and "data:image/svg+xml;base64," in md and len(md) < 1000, asset
    accuracy = _meta(runs[1], "forecast_accuracy")
    assert "| kind" in accuracy["accuracy_by_kind"] and accuracy["actual_rows"] == 6 * 30
    features_meta = _meta(runs[1], "features")
    assert features_meta["dagster/row_count"] == 2 * (1440 + 24)
    deps = features_meta["dagster/column_lineage"].deps_by_column["atr"]
    assert {d.column_name for d in deps} == {"high", "low", "close"}
    with engine.connect() as conn:  # nothing derived was rejected by the data-quality rules
        assert _count(conn, "select count(*) from quarantine") == 0


def test_rerun_writes_nothing(graph):
    _, runs = graph
    for asset in derived.CODE_VERSIONS:
        assert _meta(runs[2], asset)["rows_written"] == 0, asset
        assert _meta(runs[2], asset)["data_version"] == _meta(runs[1], asset)["data_version"], asset


def test_values_match_independent_computations(graph):
    engine, runs = graph
    with engine.connect() as conn:
        candles = features.read_candles(conn, ("synthetic", "BTC/USDT", "1h"), D1, END)
        stored = pd.read_sql(
            sa.text(
                "select time, rsi, macd, atr, vwap from features where symbol = 'BTC/USDT' and interval = '1h' "
                "and time >= :d2 order by time"
            ),
            conn,
            params={"d2": D2},
        )
        # forecasts: an ETS run's MAE against the closes, joined here in pandas
        ets = conn.execute(
            sa.text(
                "select id, metrics from ml_models where kind = 'ets' and name like '%BTC/USDT:1m%' and metrics ? 'mae'"
            )
        ).one()
        fc = pd.read_sql(
            sa.text("select target_time, point from forecasts where model_id = :id"),
            conn,
            params={"id": ets.id},
        )
        closes = features.read_candles(conn, ("synthetic", "BTC/USDT", "1m"), D2, D2 + timedelta(hours=1))
        book = pd.read_sql(
            sa.text("select * from risk_metrics where portfolio = 'sma_cross' order by time"), conn
        )
        equity = pd.read_sql(
            sa.text("select time, equity from equity_curve where portfolio = 'sma_cross' order by time"), conn
        )
        result = conn.execute(
            sa.text("select * from backtest_results where symbol = 'BTC/USDT' and end_time = :end"),
            {"end": END},
        ).one()
    # features: TA-Lib over the whole two days equals what the day-2 partition stored
    whole = features.compute_features(candles, features.CORE_V1.params).set_index("time")
    for col in ["rsi", "macd", "atr", "vwap"]:
        np.testing.assert_allclose(stored[col], whole.loc[stored["time"], col], rtol=1e-9)
    closes["close_time"] = closes["time"] + timedelta(minutes=1)
    merged = fc.merge(closes, left_on="target_time", right_on="close_time")
    assert len(merged) == 30
    assert ets.metrics["mae"] == pytest.approx((merged["close"] - merged["point"]).abs().mean())
    # backtest: an independent replay of the 48 candles gives the stored figures
    p = ANALYTICS.strategy_params()
    sim = strategy.simulate(candles, timedelta(hours=1), p, Series("synthetic", "BTC/USDT", "1h").book_id(p))
    perf = performance(sim, p, timedelta(hours=1))
    assert result.final_equity == perf.final_equity and result.trades == perf.trades
    assert result.sharpe_ratio == pytest.approx(perf.sharpe_ratio)
    wh = Warehouse(engine)
    [sp] = wh.get_strategy_performance(strategy="sma_cross", start=D1, end=END)
    stats = wh.get_bot_trade_statistics(strategy="sma_cross", start=D1, end=END)
    with engine.connect() as conn:
        total = conn.execute(
            sa.text("select sum(final_equity - initial_capital) from backtest_results where end_time = :e"),
            {"e": END},
        ).scalar()
        open_value = 0
    assert sp.closed == stats.trades
    assert stats.net_pnl == sp.total_pnl
    # risk: the book's last VaR/CVaR from its stored equity curve, recomputed with numpy
    values = np.concatenate([[2 * p.initial_capital], equity["equity"].astype(float).to_numpy()])
    r = values[1:] / values[:-1] - 1
    last = book.iloc[-1]
    assert last["var_95"] == pytest.approx(-np.quantile(r, 0.05))
    assert last["cvar_99"] == pytest.approx(-r[r <= np.quantile(r, 0.01)].mean())
    assert float(last["portfolio_value"]) == pytest.approx(float(equity["equity"].iloc[-1]))
    assert total is not None and open_value == 0


def test_lineage_leads_from_a_risk_figure_to_the_exchange(graph):
    engine, runs = graph
    day2_run = runs[1].run_id
    with engine.connect() as conn:
        t = conn.execute(sa.text("select max(time) from risk_metrics where portfolio = 'sma_cross'")).scalar()
        audit = lineage.trace(conn, "risk_metrics", {"portfolio": "sma_cross", "time": t})
        # The same question in SQL: which run and which inputs produced this figure?
        rows = conn.execute(
            sa.text(
                """
                select l.run_id, u ->> 'asset_key' as input, u ->> 'partition' as partition, u ->> 'run_id' as input_run
                from risk_metrics r
                join lineage l on l.asset_key = 'risk_metrics' and l.run_id = r.run_id
                     and l.partition_key = to_char(r.time at time zone 'UTC', 'YYYY-MM-DD')
                cross join jsonb_array_elements(l.upstream) u
                where r.portfolio = 'sma_cross' and r.time = :t
                """
            ),
            {"t": t},
        ).all()
    assert {r.run_id for r in rows} == {day2_run}  # the re-run changed nothing, so it is not named
    assert {r.input for r in rows} >= {"equity_curve", "backtest", "ohlcv"}
    assert audit.start["partition"] == DAYS[1]
    assert audit.assets() == ["backtest", "equity_curve", "risk_metrics", "trading_signals"]
    assert all(node["run_id"] == day2_run for node in audit.chain if node["partition_key"] == DAYS[1])
    # equity history of day 1 came from the day-1 run
    assert any(n["asset_key"] == "equity_curve" and n["run_id"] == runs[0].run_id for n in audit.chain)
    exchange = [s for s in audit.sources if s["kind"] == "exchange"]
    assert {s["partition"] for s in exchange} == set(DAYS)
    assert {s["symbol"] for s in exchange} == {"BTC/USDT", "ETH/USDT"}
    assert all("synthetic" in s["source"] for s in exchange)
    ohlcv_runs = {
        e["run_id"]
        for n in audit.chain
        for e in n["upstream"]
        if e["asset_key"] == "ohlcv" and e.get("partition") and e.get("materialized", True)
    }
    # equity and risk of day 1 read the last close before it: a day never materialized, and said so
    assert any(e.get("materialized") is False for n in audit.chain for e in n["upstream"])
    assert ohlcv_runs <= {runs[0].run_id, runs[1].run_id} and runs[1].run_id in ohlcv_runs
