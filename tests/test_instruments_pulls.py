"""Instruments and price kinds through the exchange pulls (issue 13): ccxt's real Binance code against a local
server serving spot and USDⓈ-M wire responses (tests/fixtures/exchanges/usdm.py), and the synthetic exchange.

The same pair as spot `XRP/USDT` and as the perpetual `XRP/USDT:USDT` (traded and mark candles, funding) must
give distinct series, none overwriting another, instruments rows for both, and a re-run that writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ccxt
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.analytics.backtest import funding_payments, is_perpetual, with_funding
from market_warehouse.resources.analytics.risk import funding_cash
from market_warehouse.resources.analytics.strategy import Simulation
from market_warehouse.resources.exchanges.client import (
    Backoff,
    fetch_funding_range,
    fetch_ohlcv_range,
    observed_intervals,
    supports_price,
)
from market_warehouse.resources.exchanges.client import build_exchange as build
from market_warehouse.resources.exchanges.gaps import gap_report
from market_warehouse.resources.exchanges.ingest import (
    LoadContext,
    ingest_candles,
    ingest_funding_rates,
    ingest_open_interest,
)
from market_warehouse.resources.exchanges.instruments import instruments_frame, select_symbols, step_size
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from market_warehouse.resources.exchanges.universe import (
    ExchangeConfig,
    MetricSeries,
    Universe,
    parse_universe,
)
from market_warehouse.resources.settings import ConfigurationError
from tests.fixtures.exchanges import usdm
from tests.fixtures.exchanges.usdm import UsdmReplay

NOW = usdm.RECORDED_AT.to_pydatetime()
SPOT, PERP = "XRP/USDT", "XRP/USDT:USDT"


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def binance(**overrides) -> ExchangeConfig:
    values = dict(
        name="binance",
        driver="binance",
        symbols=(SPOT, PERP),
        intervals=("1h",),
        options={"fetchMarkets": {"types": ["spot", "linear"]}},
        prices=("trade", "mark"),
        metrics=(MetricSeries("funding_rate", PERP),),
    )
    values.update(overrides)
    return ExchangeConfig(**values)


@pytest.fixture
def replay(httpserver):
    return UsdmReplay(httpserver)


@pytest.fixture
def exchange(replay):
    return build(binance(), api_base_url=replay.base_url)


# --- pure: ccxt wire -> frames ------------------------------------------------------------------------------


def test_instruments_from_load_markets_spot_perpetual_and_dated_future(exchange):
    markets = exchange.load_markets()
    frame = instruments_frame(markets, "binance", exchange.precisionMode, "ccxt:binance").set_index("symbol")

    spot, perp, dated = frame.loc[SPOT], frame.loc[PERP], frame.loc["XRP/USDT:USDT-240628"]
    assert (spot["type"], spot["base"], spot["quote"]) == ("spot", "XRP", "USDT")
    assert spot[["settle", "linear", "inverse", "contract_size", "expiry"]].isna().all()  # not a contract
    assert (perp["type"], perp["settle"], perp["linear"], perp["inverse"]) == ("swap", "USDT", True, False)
    assert perp["contract_size"] == 1.0 and perp["exchange_symbol"] == "XRPUSDT"
    # Binance is TICK_SIZE: precision holds the PRICE_FILTER tick and LOT_SIZE step themselves.
    assert exchange.precisionMode == ccxt.TICK_SIZE
    assert (perp["tick_size"], perp["lot_size"]) == (0.0001, 0.1)
    assert perp["listed_at"] == pd.Timestamp(1578394800000, unit="ms", tz="UTC")  # onboardDate
    assert dated["type"] == "future" and dated["expiry"] == pd.Timestamp("2024-06-28 08:00", tz="UTC")
    assert not frame.loc["LUNA/USDT", "active"] and frame.loc[SPOT, "active"]


def test_step_size_follows_the_precision_mode():
    assert step_size(0.01, ccxt.TICK_SIZE) == 0.01
    assert step_size(3, ccxt.DECIMAL_PLACES) == pytest.approx(0.001)
    assert step_size(5, ccxt.SIGNIFICANT_DIGITS) is None  # no fixed tick: unknown, not invented
    assert step_size(None, ccxt.TICK_SIZE) is None


def test_inactive_and_unknown_symbols_are_skipped_with_a_reason(exchange):
    markets = exchange.load_markets()

    chosen = select_symbols(markets, [SPOT, "LUNA/USDT", "NOPE/USDT", PERP], include_inactive=False)
    assert chosen.symbols == (SPOT, PERP) and chosen.contracts == {PERP}
    assert "inactive" in chosen.skipped["LUNA/USDT"] and "include_inactive" in chosen.skipped["LUNA/USDT"]
    assert chosen.unknown == ("NOPE/USDT",)
    with pytest.raises(ccxt.BadSymbol, match=r"binance: NOPE/USDT not among the exchange's markets"):
        chosen.check("binance")

    everything = select_symbols(markets, [SPOT, "LUNA/USDT"], include_inactive=True)
    assert everything.symbols == (SPOT, "LUNA/USDT") and not everything.skipped


def test_each_price_kind_comes_from_its_own_endpoint(replay, exchange):
    window = (t("2024-03-01"), t("2024-03-02"))
    pulled = {
        price: fetch_ohlcv_range(exchange, PERP, "1h", *window, now=NOW, price=price)
        for price in ("trade", "mark", "index", "premium_index")
    }
    spot = fetch_ohlcv_range(exchange, SPOT, "1h", *window, now=NOW)

    expected = {
        "trade": usdm.series("perp"),
        "mark": usdm.series("mark"),
        "index": usdm.series("index"),
        "premium_index": usdm.series("premium"),
    }
    for price, frame in pulled.items():
        assert frame.frame["close"].tolist() == [float(k[4]) for k in expected[price][:24]], price
    assert spot.frame["close"].tolist() == [float(k[4]) for k in usdm.series("spot")[:24]]
    assert pulled["mark"].frame["close"].ne(pulled["trade"].frame["close"]).all()
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/indexPriceKlines",
                 "/fapi/v1/premiumIndexKlines", "/api/v3/klines"):  # fmt: skip
        assert replay.count(path) >= 1, path
    assert all(supports_price(exchange, p) for p in expected)


def test_funding_interval_is_observed_never_assumed(exchange):
    pulled = fetch_funding_range(exchange, PERP, t("2024-03-01"), t("2024-03-04"), now=NOW)
    intervals = observed_intervals(pulled.frame["time"]).tolist()

    times = list(pulled.frame["time"])
    assert times[0] == t("2024-03-01") + pd.Timedelta(milliseconds=usdm.FUNDING_JITTER_MS)
    switch = times.index(usdm.FUNDING_SWITCH + pd.Timedelta(milliseconds=usdm.FUNDING_JITTER_MS))
    # The first event has nothing before it; then 8h until the exchange switched the symbol to 4h.
    assert intervals[0] is None
    assert set(intervals[1:switch]) == {"8h"} and set(intervals[switch + 1 :]) == {"4h"}
    assert intervals[switch] == "8h"  # the switch event itself came 8h after the one before
    # With the last stored event given, the first one is measured from it.
    assert observed_intervals(pulled.frame["time"][:1], t("2024-02-29 20:00")).tolist() == ["4h"]
    assert pulled.frame["mark_price"].notna().all()


def test_universe_prices_include_inactive_and_funding_without_interval(tmp_path):
    raw = {
        "exchanges": {
            "binance": {
                "symbols": [SPOT, PERP],
                "intervals": ["1h"],
                "prices": ["trade", "mark"],
                "include_inactive": True,
                "metrics": [{"metric": "funding_rate", "symbol": PERP}],
            }
        }
    }
    config = parse_universe(raw, tmp_path / "u.yaml").exchange("binance")
    assert config.prices == ("trade", "mark") and config.include_inactive is True
    assert config.metrics[0].interval is None
    assert config.prices_of(SPOT) == ("trade",) and config.prices_of(PERP) == ("trade", "mark")

    bad = {**raw["exchanges"]["binance"], "prices": ["trade", "last"]}
    with pytest.raises(ConfigurationError, match=r"exchanges\.binance\.prices.*last"):
        parse_universe({"exchanges": {"binance": bad}}, tmp_path / "u.yaml")
    eight = {
        **raw["exchanges"]["binance"],
        "metrics": [{"metric": "funding_rate", "symbol": PERP, "interval": "8h"}],
    }
    with pytest.raises(ConfigurationError, match="observed, not configured"):
        parse_universe({"exchanges": {"binance": eight}}, tmp_path / "u.yaml")


def test_synthetic_exchange_lists_spot_and_a_linear_perpetual_with_mark_candles():
    ex = SyntheticExchange(seed=3, symbols=["BTC/USDT"], clock=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    markets = ex.load_markets()
    frame = instruments_frame(markets, "synthetic", ex.precisionMode, "synthetic:3").set_index("symbol")

    assert set(frame.index) == {"BTC/USDT", "BTC/USDT:USDT"}
    assert frame.loc["BTC/USDT:USDT", "type"] == "swap" and frame.loc["BTC/USDT:USDT", "linear"]
    assert frame.loc["BTC/USDT", "tick_size"] == 0.01
    since = int(t("2026-03-01").value // 1_000_000)
    trade = ex.fetch_ohlcv("BTC/USDT:USDT", "1h", since, 3)
    mark = ex.fetch_mark_ohlcv("BTC/USDT:USDT", "1h", since, 3)
    assert [m[0] for m in mark] == [r[0] for r in trade]
    assert all(m[4] > r[4] for m, r in zip(mark, trade, strict=True))  # above the traded price
    with pytest.raises(ccxt.BadRequest, match="spot"):
        ex.fetch_mark_ohlcv("BTC/USDT", "1h", since, 3)


# --- derived: funding in a perpetual's equity ---------------------------------------------------------------


def _marks(quantities: list[str], closes: list[float]) -> list[dict]:
    times = pd.date_range("2024-03-01 01:00", periods=len(quantities), freq="1h", tz="UTC")
    return [
        {"time": tm, "cash": Decimal("1000"), "quantity": Decimal(q), "close": c, "equity": Decimal("1000") + Decimal(q) * Decimal(str(c))}
        for tm, q, c in zip(times, quantities, closes, strict=True)
    ]  # fmt: skip


def test_funding_is_paid_only_through_funding_times_the_position_is_held():
    # Held from the 02:00 close to the 05:00 close; funding at 03:00 (held), 06:00 (flat again) and 08:00.
    marks = _marks(["0", "10", "10", "10", "10", "0", "0", "0"], [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    funding = pd.DataFrame(
        {
            "time": [t("2024-03-01 03:00"), t("2024-03-01 06:00"), t("2024-03-01 08:00")],
            "rate": [0.001, 0.001, -0.002],
            "mark_price": [2.5, None, None],
        }
    )

    paid = funding_payments(pd.DataFrame(marks), funding)
    assert list(paid["time"]) == [t("2024-03-01 03:00")]  # flat at 06:00 and 08:00: nothing
    assert paid["payment"].tolist() == [Decimal("-0.025")]  # long pays 10 x 2.5 (mark) x 0.001
    short = funding_payments(pd.DataFrame(marks), funding, side=-1)
    assert short["payment"].tolist() == [Decimal("0.025")]  # a short receives it

    sim = with_funding(Simulation(equity=marks), funding)
    before, at, after = sim.equity[1], sim.equity[2], sim.equity[3]  # marks at 02:00, 03:00, 04:00
    assert before["equity"] == marks[1]["equity"]
    assert at["equity"] == marks[2]["equity"] - Decimal("0.025") and at["funding"] == Decimal("-0.025")
    assert after["cash"] == marks[3]["cash"] - Decimal("0.025")
    # The mark price stands in with the bar close when the exchange gave none.
    no_mark = funding.assign(mark_price=None)
    assert funding_payments(pd.DataFrame(marks), no_mark)["payment"].tolist() == [Decimal("-0.02")]


def test_only_perpetuals_carry_funding():
    assert is_perpetual("BTC/USDT:USDT") and is_perpetual("BTC/USD:BTC")
    assert not is_perpetual("BTC/USDT") and not is_perpetual("BTC/USDT:USDT-261225")


# --- into the warehouse -------------------------------------------------------------------------------------


def rows(engine: sa.Engine, query: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query), params)]


def written_since(engine: sa.Engine, xid: int, tables: list[str]) -> dict[str, int]:
    """Rows inserted or updated by transactions after `xid` (xmin is the 32-bit part of the txid)."""
    with engine.connect() as conn:
        counts = {
            name: conn.scalar(sa.text(f'SELECT count(*) FROM "{name}" WHERE xmin::text::bigint >= :x'),
                              {"x": xid % 2**32})
            for name in tables
        }  # fmt: skip
    return {name: n for name, n in counts.items() if n}


def current_xid(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        return int(conn.scalar(sa.text("SELECT txid_current()")))


def served_closes(kind: str, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[pd.Timestamp, float]]:
    out = [(pd.Timestamp(k[0], unit="ms", tz="UTC"), float(k[4])) for k in usdm.series(kind)]
    return [(tm, c) for tm, c in out if start <= tm < end]


def test_spot_and_perpetual_of_one_pair_stay_apart_and_a_rerun_writes_nothing(any_engine, replay, exchange):
    engine = any_engine  # PostgreSQL, TimescaleDB full and Apache-only
    config = binance()
    ctx = LoadContext(engine, run_id="r1", now=NOW, backoff=Backoff(base_delay=0.0))
    window = (t("2024-03-01"), t("2024-03-03"))

    candles = ingest_candles(ctx, exchange, config, *window)
    funding = ingest_funding_rates(ctx, exchange, config, *window)

    # Three series of the same pair and hours, each with the prices its own endpoint served.
    stored = rows(engine, "SELECT symbol, price, time, close FROM ohlcv ORDER BY symbol, price, time")
    by_series: dict[tuple[str, str], list] = {}
    for symbol, price, time, close in stored:
        by_series.setdefault((symbol, price), []).append((pd.Timestamp(time), close))
    assert by_series == {
        (SPOT, "trade"): served_closes("spot", *window),
        (PERP, "mark"): served_closes("mark", *window),
        (PERP, "trade"): served_closes("perp", *window),
    }
    assert candles.load.inserted == 3 * 48
    assert f"{SPOT}: mark candles: spot has traded prices only" in candles.notes
    # Both instruments, as the exchange describes them.
    assert rows(engine, "SELECT symbol, type, settle, linear, tick_size, lot_size, active FROM instruments "
                        "ORDER BY symbol") == [
        (SPOT, "spot", None, None, 0.0001, 0.1, True),
        (PERP, "swap", "USDT", True, 0.0001, 0.1, True),
    ]  # fmt: skip
    # Funding: every event of the window, with the interval observed since the one before.
    events = [
        e
        for e in usdm.funding_events()
        if window[0].value // 10**6 <= e["fundingTime"] < window[1].value // 10**6
    ]
    got = rows(engine, "SELECT time, rate, mark_price, interval FROM funding_rates ORDER BY time")
    assert [(pd.Timestamp(tm), r, m) for tm, r, m, _ in got] == [
        (pd.Timestamp(e["fundingTime"], unit="ms", tz="UTC"), float(e["fundingRate"]), float(e["markPrice"]))
        for e in events
    ]
    assert [i for *_, i in got] == [None, "8h", "8h", "8h", "8h", "8h", "4h"]  # 4h from the switch on
    assert funding.load.inserted == len(events) == 7

    xid = current_xid(engine)
    again = ingest_candles(ctx, exchange, config, *window) + ingest_funding_rates(
        ctx, exchange, config, *window
    )

    assert again.load.fetched == 0 and again.stats.requests <= 2  # markets only (ccxt caches them)
    assert written_since(engine, xid, ["ohlcv", "funding_rates", "instruments", "coverage"]) == {}


def test_an_inactive_symbol_is_reported_an_unknown_one_fails_after_the_others_load(engine, replay, exchange):
    config = binance(symbols=("LUNA/USDT", "NOPE/USDT", SPOT), prices=("trade",), metrics=())
    ctx = LoadContext(engine, run_id="r1", now=NOW, backoff=Backoff(base_delay=0.0))

    with pytest.raises(ccxt.BadSymbol, match="NOPE/USDT not among the exchange's markets"):
        ingest_candles(ctx, exchange, config, t("2024-03-01"), t("2024-03-02"))

    # The known active symbol was loaded first; only its candles were asked for.
    assert rows(engine, "SELECT symbol, count(*) FROM ohlcv GROUP BY symbol") == [(SPOT, 24)]
    assert {args["symbol"] for path, args in replay.requests if path == "/api/v3/klines"} == {"XRPUSDT"}
    # The inactive one is still described (it existed), the unknown one is not invented.
    assert rows(engine, "SELECT symbol, active FROM instruments ORDER BY symbol") == [
        ("LUNA/USDT", False),
        (SPOT, True),
    ]
    inactive = ingest_candles(
        ctx, exchange, binance(symbols=("LUNA/USDT",), metrics=()), t("2024-03-01"), t("2024-03-02")
    )
    assert inactive.load.fetched == 0 and any(n.startswith("LUNA/USDT: inactive") for n in inactive.notes)


def test_funding_gaps_follow_the_observed_schedule(any_engine, replay, exchange):
    engine = any_engine  # PostgreSQL, TimescaleDB full and Apache-only
    config = binance(symbols=(PERP,), prices=("trade",))
    ctx = LoadContext(engine, run_id="r1", now=NOW, backoff=Backoff(base_delay=0.0))
    universe = Universe(Path("u.yaml"), (config,))
    # Days 1 and 3 only: day 2 (00:00, 08:00 at 8h; the switch to 4h at 16:00, 20:00) never asked.
    ingest_funding_rates(ctx, exchange, config, t("2024-03-01"), t("2024-03-02"))
    ingest_funding_rates(ctx, exchange, config, t("2024-03-03"), t("2024-03-04"))

    report = gap_report(engine, universe, t("2024-03-01"), t("2024-03-04"), now=NOW)
    (series,) = report.funding
    # After day 1's last event (16:00, every 8h) the next is due at 00:00: three 8h events to day 3's first.
    jitter = pd.Timedelta(milliseconds=usdm.FUNDING_JITTER_MS)
    assert series.ranges == ((t("2024-03-01 16:00") + jitter, t("2024-03-03 00:00") + jitter, 3),)
    # Day 3's events are measured from each other (4h), not across the hole; nothing is due after 08:00 yet.
    got = rows(engine, "SELECT interval FROM funding_rates WHERE time >= '2024-03-03' ORDER BY time")
    assert got == [(None,), ("4h",), ("4h",)]

    ingest_funding_rates(ctx, exchange, config, t("2024-03-02"), t("2024-03-03"))
    filled = gap_report(engine, universe, t("2024-03-01"), t("2024-03-04"), now=NOW)
    assert filled.funding_missing == 0  # the 8h -> 4h switch is the schedule, not a gap


def test_open_interest_of_the_perpetual_into_its_own_table(engine, replay, exchange):
    config = binance(symbols=(PERP,), metrics=(MetricSeries("open_interest", PERP, "1h"),))
    ctx = LoadContext(engine, run_id="r1", now=NOW, backoff=Backoff(base_delay=0.0))

    result = ingest_open_interest(ctx, exchange, config, t("2024-03-02"), t("2024-03-03"))

    served = [
        p
        for p in usdm.open_interest_points()
        if t("2024-03-02") <= pd.Timestamp(p["timestamp"], unit="ms", tz="UTC") < t("2024-03-03")
    ]
    got = rows(engine, "SELECT symbol, interval, time, amount, value FROM open_interest ORDER BY time")
    assert [(s, i, pd.Timestamp(tm), a, v) for s, i, tm, a, v in got] == [
        (PERP, "1h", pd.Timestamp(p["timestamp"], unit="ms", tz="UTC"), float(p["sumOpenInterest"]),
         float(p["sumOpenInterestValue"]))
        for p in served
    ]  # fmt: skip
    assert result.load.inserted == len(served) == 24


def test_the_equity_curve_carries_the_funding_the_backtest_charges():
    """The equity curve (from fills) and the simulation (bar by bar) see the same funding: bought at the
    01:00 open (not held at the 01:00 funding), sold at the 05:00 open (held into the 05:00 funding)."""
    fill = {
        "exchange": "x",
        "symbol": PERP,
        "quantity": Decimal("10"),
        "price": Decimal("2"),
        "fees": Decimal(0),
    }
    fills = pd.DataFrame([
        {**fill, "side": "buy", "executed_at": t("2024-03-01 01:00")},
        {**fill, "side": "sell", "executed_at": t("2024-03-01 05:00")},
    ])  # fmt: skip
    times = [t(f"2024-03-01 0{h}:00") for h in (1, 3, 5, 7)]
    funding = pd.DataFrame(
        {
            "exchange": "x",
            "symbol": PERP,
            "time": times,
            "rate": 0.001,
            "mark_price": 2.0,
            "step": pd.Timedelta("1h"),
        }
    )

    assert funding_cash(fills, funding, t("2024-03-01 04:00")) == Decimal("-0.02")  # 03:00 only
    assert funding_cash(fills, funding, t("2024-03-01 08:00")) == Decimal("-0.04")  # 03:00 and 05:00
    short = fills.assign(side=["sell", "buy"])
    assert funding_cash(short, funding, t("2024-03-01 08:00")) == Decimal("0.04")  # a short receives

    # The simulation's marks of the same path: a bar close at T holds the fills before T.
    quantities = ["0", "10", "10", "10", "10", "0", "0"]  # closes at 01:00 .. 07:00
    marks = [
        {"time": t(f"2024-03-01 0{h}:00"), "cash": Decimal(0), "quantity": Decimal(q), "close": 2.0, "equity": Decimal(0)}
        for h, q in zip(range(1, 8), quantities, strict=True)
    ]  # fmt: skip
    sim = with_funding(Simulation(equity=marks), funding)
    assert (
        sim.equity[-1]["funding"] == funding_cash(fills, funding, t("2024-03-01 07:00")) == Decimal("-0.04")
    )
    assert sim.equity[2]["funding"] == funding_cash(fills, funding, t("2024-03-01 03:00")) == Decimal("-0.02")


BTC_PERP = "BTC/USDT:USDT"
PERPETUAL_UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 5
    symbols: [BTC/USDT:USDT]
    intervals: [1h]
    snapshot_every: 6h
    metrics:
      - {metric: funding_rate, symbol: BTC/USDT:USDT}
"""


def test_a_perpetuals_backtest_and_equity_curve_include_its_funding(db_url, tmp_path):
    """Through the Dagster assets: candles and funding of the synthetic perpetual, then the derived graph.
    The stored backtest and the equity curve agree with each other, and differ from a funding-blind replay by
    exactly the funding the position paid."""
    from market_warehouse.pipelines.defs.derived import DERIVED_ASSETS, AnalyticsResource
    from market_warehouse.pipelines.defs.market_data import funding_rates, ohlcv
    from market_warehouse.resources.analytics import backtest, features, strategy
    from market_warehouse.resources.analytics.backtest import Series
    from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
    from tests.universes import universe_file

    analytics = AnalyticsResource(forecast_intervals=["1m"], strategy_inception="2024-03-01", fast=3, slow=8)
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, PERPETUAL_UNIVERSE)),
        "analytics": analytics,
    }
    import dagster as dg

    dg.materialize([ohlcv, funding_rates, *DERIVED_ASSETS], partition_key="2024-03-01", resources=resources)
    engine = resources["warehouse"].engine()
    end = t("2024-03-02")
    with engine.connect() as conn:
        candles = features.read_candles(conn, ("synthetic", BTC_PERP, "1h"), t("2024-03-01"), end)
        funding = backtest.read_funding(conn, "synthetic", BTC_PERP, t("2024-03-01"), end)
        stored = conn.execute(
            sa.text("SELECT final_equity FROM backtest_results WHERE end_time = :e"), {"e": end}
        )
        final_equity = stored.scalar_one()
        query = sa.text("SELECT time, equity FROM equity_curve WHERE portfolio = 'sma_cross'")
        curve = {pd.Timestamp(time): equity for time, equity in conn.execute(query)}
    p = analytics.strategy_params()
    blind = strategy.simulate(
        candles, pd.Timedelta(hours=1), p, Series("synthetic", BTC_PERP, "1h").book_id(p)
    )
    paid = funding_payments(pd.DataFrame(blind.equity), funding)
    assert len(funding) == 3 and len(paid) >= 1  # the strategy held the perpetual through a funding time
    assert (
        final_equity
        == blind.equity[-1]["equity"] + sum(paid["payment"], Decimal(0))
        != blind.equity[-1]["equity"]
    )
    # The equity curve, rebuilt from the fills, carries the same funding at every bar close it shows.
    charged = {m["time"]: m["equity"] for m in backtest.with_funding(blind, funding).equity}
    assert len(curve) == 23 and {time: charged[time] for time in curve} == curve
    assert any(curve[m["time"]] != m["equity"] for m in blind.equity if m["time"] in curve)  # funding shows
