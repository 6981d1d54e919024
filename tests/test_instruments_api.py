"""Issue 13: the storage API of instruments, funding rates and open interest, on every backend.

Instruments are never deleted and a backtest's date sees the instruments listed then (no survivorship
bias); funding rates and open interest load through `load_frame` with their rules, bad rows quarantined
with the rule that failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse
from market_warehouse.resources.warehouse.load import load_frame

SEEN = datetime(2021, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 30, tzinfo=UTC)

# The symbol table of the README's instrument model.
INSTRUMENTS = [
    {"symbol": "BTC/USDT", "type": "spot", "base": "BTC", "quote": "USDT", "exchange_symbol": "BTCUSDT"},
    {
        "symbol": "BTC/USDT:USDT",
        "type": "swap",
        "base": "BTC",
        "quote": "USDT",
        "settle": "USDT",
        "linear": True,
        "inverse": False,
        "contract_size": 1.0,
        "tick_size": 0.1,
        "lot_size": 0.001,
    },
    {
        "symbol": "BTC/USD:BTC",
        "type": "swap",
        "base": "BTC",
        "quote": "USD",
        "settle": "BTC",
        "linear": False,
        "inverse": True,
        "contract_size": 100.0,
        "exchange_symbol": "BTCUSD_PERP",
    },
    {
        "symbol": "BTC/USDT:USDT-261225",
        "type": "future",
        "base": "BTC",
        "quote": "USDT",
        "settle": "USDT",
        "linear": True,
        "inverse": False,
        "expiry": datetime(2026, 12, 25, 8, tzinfo=UTC),
    },
    {
        "symbol": "BTC/USD:BTC-261225-100000-C",
        "type": "option",
        "base": "BTC",
        "quote": "USD",
        "settle": "BTC",
        "strike": 100000.0,
        "option_type": "call",
        "expiry": datetime(2026, 12, 25, 8, tzinfo=UTC),
        "info": {"underlying": "BTC"},
    },
]


@pytest.fixture
def wh(any_engine) -> Warehouse:
    wh = Warehouse(any_engine)
    rows = [{"exchange": "binance", **row} for row in INSTRUMENTS]
    assert wh.upsert_instruments(rows, seen_at=SEEN) == len(rows)
    return wh


def _symbols(records) -> list[str]:
    return [r.symbol for r in records]


def test_instruments_round_trip_and_filters(wh):
    got = {r.symbol: r for r in wh.get_instruments()}
    assert set(got) == {row["symbol"] for row in INSTRUMENTS}
    perpetual = got["BTC/USDT:USDT"]
    assert (perpetual.type, perpetual.settle, perpetual.linear, perpetual.inverse) == (
        "swap",
        "USDT",
        True,
        False,
    )
    assert perpetual.first_seen == perpetual.last_seen == SEEN and perpetual.active
    assert got["BTC/USDT"].linear is None and got["BTC/USDT"].settle is None  # spot
    assert got["BTC/USD:BTC"].inverse and got["BTC/USD:BTC"].contract_size == 100.0
    assert got["BTC/USD:BTC-261225-100000-C"].info == {"underlying": "BTC"}
    assert _symbols(wh.get_instruments(type="swap")) == ["BTC/USD:BTC", "BTC/USDT:USDT"]
    assert wh.get_instruments(exchange="okx") == []
    with pytest.raises(ValueError, match="unknown instrument type 'perp'"):
        wh.get_instruments(type="perp")


def test_seen_times_advance_and_nothing_is_deleted(wh):
    later = SEEN + timedelta(days=400)
    spot = {"exchange": "binance", **INSTRUMENTS[0]}
    # Only the spot pair is listed now: the others stay, untouched.
    assert wh.upsert_instruments([spot], seen_at=later) == 1
    assert wh.upsert_instruments([spot], seen_at=SEEN) == 0  # an older sighting changes nothing
    got = {r.symbol: r for r in wh.get_instruments()}
    assert len(got) == len(INSTRUMENTS)
    assert (got["BTC/USDT"].first_seen, got["BTC/USDT"].last_seen) == (SEEN, later)
    assert got["BTC/USDT:USDT"].last_seen == SEEN


def test_instruments_at_a_date_include_the_delisted_ones(wh):
    inverse = {"exchange": "binance", **INSTRUMENTS[2], "active": False}
    inverse["delisted_at"] = datetime(2022, 6, 1, tzinfo=UTC)
    listed = {"exchange": "binance", **INSTRUMENTS[1], "listed_at": datetime(2019, 9, 8, tzinfo=UTC)}
    wh.upsert_instruments([inverse, listed], seen_at=SEEN + timedelta(days=30))
    in_2021 = _symbols(wh.get_instruments(at=datetime(2021, 6, 1, tzinfo=UTC)))
    assert "BTC/USD:BTC" in in_2021 and "BTC/USDT:USDT" in in_2021
    in_2023 = _symbols(wh.get_instruments(at=datetime(2023, 1, 1, tzinfo=UTC)))
    assert "BTC/USD:BTC" not in in_2023 and "BTC/USDT:USDT" in in_2023
    assert "BTC/USDT:USDT" not in _symbols(wh.get_instruments(at=datetime(2019, 1, 1, tzinfo=UTC)))
    after_expiry = _symbols(wh.get_instruments(at=datetime(2027, 1, 1, tzinfo=UTC)))
    assert "BTC/USDT:USDT-261225" not in after_expiry and "BTC/USDT" in after_expiry
    assert "BTC/USD:BTC" not in _symbols(wh.get_instruments(active=True))
    # The delisting stays known when a later source does not say it.
    wh.upsert_instruments([{**inverse, "delisted_at": None}], seen_at=SEEN + timedelta(days=31))
    assert {r.symbol: r for r in wh.get_instruments()}["BTC/USD:BTC"].delisted_at == inverse["delisted_at"]


def test_bad_instruments_fail_with_the_row_and_the_rule(wh):
    with pytest.raises(ValueError, match=r"row 1 \('binance', 'ETH/USDT:USDT'\): a swap needs its settle"):
        wh.upsert_instruments(
            [
                {"exchange": "binance", "symbol": "ETH/USDT", "type": "spot", "base": "ETH", "quote": "USDT"},
                {
                    "exchange": "binance",
                    "symbol": "ETH/USDT:USDT",
                    "type": "swap",
                    "base": "ETH",
                    "quote": "USDT",
                },
            ]
        )
    with pytest.raises(ValueError, match="type 'perpetual' is not one of"):
        wh.upsert_instruments(
            [
                {
                    "exchange": "b",
                    "symbol": "X/Y:Y",
                    "type": "perpetual",
                    "base": "X",
                    "quote": "Y",
                    "settle": "Y",
                }
            ]
        )
    assert "ETH/USDT" not in _symbols(wh.get_instruments())  # nothing of the refused call was written


def _quarantined(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        query = sa.text("SELECT rule, key->>'time' FROM quarantine WHERE table_name = :t ORDER BY 2")
        return [tuple(r) for r in conn.execute(query, {"t": table})]


def test_funding_rates_load_with_observed_intervals_and_bounds(any_engine):
    times = pd.to_datetime(
        ["2026-11-01T00:00Z", "2026-11-01T08:00Z", "2026-11-01T12:00Z", "2026-11-01T16:00Z"], utc=True
    )
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT:USDT",
            "time": times,
            "rate": [0.0001, -0.0002, 0.2, 0.0003],  # 20 % is no funding rate
            "mark_price": [91000.0, 91100.0, 91200.0, 91300.0],
            "interval": [None, "8h", "4h", "4h"],
        }
    )
    result = load_frame(any_engine, "funding_rates", frame, source="test", now=NOW)
    assert (result.inserted, result.quarantined) == (3, 1)
    assert result.quarantine_reasons == {"rate_bounds": 1}
    assert [rule for rule, _ in _quarantined(any_engine, "funding_rates")] == ["rate_bounds"]
    stored = Warehouse(any_engine).get_funding_rates("binance", "BTC/USDT:USDT")
    assert [r.time for r in stored] == [t.to_pydatetime() for t in times[[0, 1, 3]]]
    assert [r.interval for r in stored] == [None, "8h", "4h"]
    assert stored[0].rate == pytest.approx(0.0001) and stored[0].source == "test"
    again = load_frame(any_engine, "funding_rates", frame.drop(index=2), now=NOW)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)


def test_open_interest_loads_and_negative_amounts_are_quarantined(any_engine):
    times = pd.date_range("2026-11-01", periods=4, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT:USDT",
            "interval": "1h",
            "time": times,
            "amount": [100.0, -5.0, 120.0, 130.0],
            "value": [9.1e6, 1.0, 1.1e7, -1.0],
        }
    )
    result = load_frame(any_engine, "open_interest", frame, now=NOW)
    assert (result.inserted, result.quarantined) == (2, 2)
    assert set(result.quarantine_reasons) == {"amount_non_negative", "value_non_negative"}
    wh = Warehouse(any_engine)
    stored = wh.get_open_interest("binance", "BTC/USDT:USDT", "1h")
    assert [(r.time, r.amount) for r in stored] == [(times[0], 100.0), (times[2], 120.0)]
    assert wh.get_open_interest("binance", "BTC/USDT:USDT", "5m") == []


def test_the_async_api_reads_and_writes_instruments_and_funding_alike(any_backend_url):
    """The same operations on asyncpg (AsyncWarehouse): NULL filters and timestamps bound and typed."""

    async def scenario():
        async with AsyncWarehouse(any_backend_url) as awh:
            rows = [{"exchange": "binance", **row} for row in INSTRUMENTS]
            written = await awh.upsert_instruments(rows, seen_at=SEEN)
            listed = await awh.get_instruments(at=datetime(2027, 1, 1, tzinfo=UTC))
            swaps = await awh.get_instruments(exchange="binance", type="swap", active=True)
            rates = [{"exchange": "binance", "symbol": "BTC/USDT:USDT", "time": SEEN, "rate": 0.0001}]
            inserted = (await awh.insert_funding_rates(rates)).inserted
            stored = await awh.get_funding_rates("binance", "BTC/USDT:USDT", start=SEEN)
            return written, _symbols(listed), _symbols(swaps), inserted, stored

    written, listed, swaps, inserted, stored = asyncio.run(scenario())
    assert written == len(INSTRUMENTS)
    assert "BTC/USDT:USDT-261225" not in listed and "BTC/USDT" in listed  # expired by 2027
    assert swaps == ["BTC/USD:BTC", "BTC/USDT:USDT"]
    assert inserted == 1 and [(r.time, r.rate) for r in stored] == [(SEEN, 0.0001)]
