"""Records of the 1,000-row reads (issue 18) are exactly the records the dataclasses' own `__init__` makes.

`from_arrow` builds datetimes by adding steps, repeats one string for a constant column and fills each
record's dict in a generated loop instead of calling the frozen `__init__`; every path is compared here
field by field with records made by `__init__` from psycopg2 rows and with the frame read: same values,
same Python types (float, int, bool, str, None, tz-aware UTC datetime, Decimal), same key order, equal
and hashable, still frozen.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from market_warehouse.resources.warehouse import records
from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse
from market_warehouse.resources.warehouse.records import (
    Candle,
    EquityPoint,
    OrderBookSnapshot,
    from_arrow,
    from_row,
)
from market_warehouse.resources.warehouse.upsert import upsert_dataframe
from tests.warehouse_data import MINUTE, SERIES, T0, candle_frame

ROWS = 1500


def assert_same_records(got: list, expected: list) -> None:
    """Equal records whose every field has the same value, the same type and the same dict position."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert type(a) is type(b) and a == b
        try:
            expected_hash = hash(b)
        except TypeError:  # a list field (order books): unhashable either way
            with pytest.raises(TypeError):
                hash(a)
        else:
            assert hash(a) == expected_hash
        assert list(vars(a)) == list(vars(b)) == [f.name for f in dataclasses.fields(a)]
        for name, value in vars(b).items():
            other = getattr(a, name)
            assert type(other) is type(value) and other == value, (name, other, value)
            if isinstance(value, datetime):
                assert other.tzinfo is UTC and value.tzinfo is UTC, name


def assert_field_types(candles: list[Candle]) -> None:
    """Each value is of the type its field declares (or None where the field is optional)."""
    hints = typing.get_type_hints(Candle)
    for candle in candles:
        for name, hint in hints.items():
            allowed = set(typing.get_args(hint)) or {hint}
            assert type(getattr(candle, name)) in allowed, (name, getattr(candle, name), hint)


def stored_frame() -> pd.DataFrame:
    """Candles with every optional column partly NULL, a `real` score, and gaps in the times."""
    frame = candle_frame(ROWS + 100)
    frame = frame.drop(index=range(700, 800)).reset_index(drop=True)  # a gap: times not evenly spaced
    n = len(frame)
    frame["quote_volume"] = [None if i % 4 == 0 else v * 101.5 for i, v in enumerate(frame["volume"])]
    frame["trades_count"] = pd.array([None if i % 5 == 0 else i * 3 for i in range(n)], "Int64")
    frame["vwap"] = [None if i % 6 == 0 else c for i, c in enumerate(frame["close"])]
    frame["quality_score"] = [None if i % 7 == 0 else round(90 + i % 10 + 0.7, 1) for i in range(n)]
    frame["is_anomaly"] = [i % 9 == 0 for i in range(n)]
    frame["source"] = [None if i % 2 else "rest" for i in range(n)]
    return frame


def init_records(engine, start: datetime | None = None) -> list[Candle]:
    """The stored candles as `Candle.__init__` makes them from psycopg2 rows (`from_row`)."""
    query = "SELECT * FROM ohlcv WHERE exchange = %(e)s AND symbol = %(s)s AND time >= %(t)s ORDER BY time"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(query, {"e": SERIES[0], "s": SERIES[1], "t": start or T0}).mappings()
        return [from_row(Candle, row) for row in rows]


def frame_values(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as Python values (NaN / <NA> as None, Timestamps as datetimes)."""
    out = []
    for row in frame.astype(object).to_dict("records"):
        values = {}
        for name, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                value = None
            elif isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            values[name] = value
        out.append(values)
    return out


def test_read_records_are_the_records_init_makes(any_backend_url, any_engine):
    upsert_dataframe(any_engine, "ohlcv", stored_frame())
    expected = init_records(any_engine)
    assert len(expected) == ROWS and {c.source for c in expected} == {"rest", None}
    assert {type(c.trades_count) for c in expected} == {int, type(None)}
    with Warehouse(any_engine) as wh:
        every = wh.get_ohlcv(*SERIES)
        window = wh.get_ohlcv(*SERIES, start=T0 + 650 * MINUTE, limit=1000)  # across the gap
        frame = wh.get_ohlcv_frame(*SERIES, start=T0 + 650 * MINUTE, limit=1000)
    assert_same_records(every, expected)
    assert_field_types(every)
    assert_same_records(window, [c for c in expected if c.time >= T0 + 650 * MINUTE][:1000])
    for candle, row in zip(window, frame_values(frame), strict=True):
        assert dataclasses.asdict(candle) == {k: row[k] for k in dataclasses.asdict(candle)}

    async def read_async() -> list[Candle]:
        async with AsyncWarehouse(any_backend_url) as awh:
            return await awh.get_ohlcv(*SERIES, start=T0 + 650 * MINUTE, limit=1000)

    assert_same_records(asyncio.run(read_async()), window)


def test_read_records_stay_frozen_dataclasses(engine):
    upsert_dataframe(engine, "ohlcv", candle_frame(20))
    with Warehouse(engine) as wh:
        candle = wh.get_ohlcv(*SERIES, limit=1)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        candle.close = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        del candle.open
    assert dataclasses.replace(candle, close=1.0).close == 1.0 and candle.close != 1.0
    assert pickle.loads(pickle.dumps(candle)) == candle == copy.deepcopy(candle)
    assert {candle: 1}[init_records(engine, candle.time)[0]] == 1
    assert repr(candle) == repr(init_records(engine, candle.time)[0])


def utc_times(values: list[int | None], unit: str = "us") -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.timestamp(unit, "UTC"))])


MIN = 60_000_000
rng = np.random.default_rng(5)
TIMES = {
    "evenly spaced": [1_700_000_000_000_000 + i * MIN for i in range(1000)],
    "gaps": [1_700_000_000_000_000 + i * MIN + (i > 500) * 7 * MIN for i in range(1000)],
    "irregular (tape trades)": sorted(int(x) for x in rng.integers(1.6e15, 1.7e15, 1000)),
    "before 1970, microseconds": [-86_400_000_123 + i * 1_000_001 for i in range(100)],
    "unordered": [3 * MIN, MIN, 2 * MIN, -MIN, 0],
    "NULLs": [None, MIN, None, 3 * MIN, 4 * MIN, None],
    "NULLs among evenly spaced": [
        None if i % 100 == 7 else 1_700_000_000_000_000 + i * MIN for i in range(1000)
    ],
    "one": [1_700_000_000_000_001],
    "year 1 and 9999": [-62_135_596_800_000_000, 253_402_300_799_999_999],
}


@pytest.mark.parametrize("name", list(TIMES))
def test_times_are_what_arrow_converts(name):
    column = utc_times(TIMES[name])
    got = records._python_values(column)
    expected = column.to_pylist()  # pyarrow's own conversion, one scalar at a time
    assert got == expected
    assert all(
        v is None if e is None else type(v) is datetime and v.tzinfo is UTC
        for v, e in zip(got, expected, strict=True)
    )
    if name == "evenly spaced":  # nanosecond columns of whole microseconds give the same
        nanos = utc_times([v * 1000 for v in TIMES[name]], "ns")
        assert records._python_values(nanos) == expected


@pytest.mark.parametrize(
    "values",
    [["binance"] * 5, ["rest", None, "rest", None], ["a", "b", "a"], ["", ""], [None, "x"], ["é", "é"]],
)
def test_strings_are_what_arrow_converts(values):
    for type_ in (pa.string(), pa.large_string()):
        column = pa.chunked_array([pa.array(values, type_)])
        assert records._python_values(column) == values
        assert [type(v) for v in records._python_values(column)] == [type(v) for v in values]


@dataclass(frozen=True)
class Checked:
    """A record with a __post_init__: built by its __init__, so the check runs."""

    name: str
    size: int = 1
    tags: list = field(default_factory=list)

    def __post_init__(self):
        if self.size < 0:
            raise ValueError("negative size")


def test_missing_fields_take_their_defaults_as_init_gives_them():
    keys = ["exchange", "symbol", "time", "best_bid", "best_ask", "mid_price", "spread"]
    keys += ["spread_percent", "bid_depth", "ask_depth", "depth_levels"]
    rows = [[SERIES[0], SERIES[1], T0 + i * MINUTE, 1.0, 2.0, 1.5, 1.0, 0.5, 3.0, 4.0, i] for i in range(3)]
    columns = [list(c) for c in zip(*rows, strict=True)]
    got = records._from_columns(OrderBookSnapshot, keys, columns)
    assert_same_records(got, [OrderBookSnapshot(**dict(zip(keys, row, strict=True))) for row in rows])
    assert got[0].bids == [] and got[0].bids is not got[1].bids  # one new list per record
    candles = records._from_columns(
        Candle,
        ["exchange", "symbol", "interval", "time", "open"] + ["high", "low", "close", "volume"],
        [[v] for v in (*SERIES, T0, 1.0, 2.0, 0.5, 1.5, 10.0)],
    )
    assert_same_records(candles, [Candle(*SERIES, T0, 1.0, 2.0, 0.5, 1.5, 10.0)])
    assert records._from_columns(Checked, ["name"], [["a", "b"]]) == [Checked("a"), Checked("b")]
    with pytest.raises(ValueError, match="negative size"):
        records._from_columns(Checked, ["name", "size"], [["a"], [-1]])
    with pytest.raises(KeyError, match="Candle.time"):
        records._from_columns(Candle, ["exchange", "symbol", "interval"], [["a"], ["b"], ["c"]])


def test_decimal_money_read_from_arrow_stays_decimal():
    table = pa.table(
        {
            "portfolio": ["main", "main"],
            "time": pa.array([T0, T0 + timedelta(days=1)], pa.timestamp("us", "UTC")),
            "equity": pa.array([Decimal("10000.12345678"), Decimal("10100.5")], pa.decimal128(20, 8)),
            "cash": pa.array([Decimal("0.00000001"), None], pa.decimal128(20, 8)),
            "buying_power": pa.array([None, None], pa.decimal128(20, 8)),
            "positions_value": pa.array([Decimal("-5"), Decimal("7.25")], pa.decimal128(20, 8)),
            "total_return": [0.01, None],
            "daily_return": [None, 0.02],
            "run_id": ["r1", None],
        }
    )
    got = from_arrow(EquityPoint, table)
    assert_same_records(got, [from_row(EquityPoint, row) for row in table.to_pylist()])
    assert [type(p.equity) for p in got] == [Decimal, Decimal] and got[0].equity == Decimal("10000.12345678")
    assert got[1].cash is None and got[0].cash == Decimal("0.00000001")
