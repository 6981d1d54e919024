"""The reader registries: every registered reader (file formats, JSON layouts) has a sample file here,
detection picks exactly that reader, and the file reads into the same canonical candles whatever the
family. No database."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pandas as pd
import pytest

from market_warehouse.resources.files.layouts import CANONICAL, parse_file
from market_warehouse.resources.files.readers import FORMATS, LAYOUTS, Reader, Registry
from market_warehouse.resources.files.readers.containers import open_sources, read_bytes
from market_warehouse.resources.files.readers.json_document import load_document

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
N = 4
PATH = "binance/BTC_USDT-1m.json"


def _frame() -> pd.DataFrame:
    """N one-minute candles with the time in the index, prices rising by one per candle."""
    return pd.DataFrame(
        {
            "open": [100.0 + i for i in range(N)],
            "high": [102.0 + i for i in range(N)],
            "low": [99.0 + i for i in range(N)],
            "close": [101.0 + i for i in range(N)],
            "volume": [10.0 + i for i in range(N)],
        },
        index=pd.DatetimeIndex([T0 + pd.Timedelta(minutes=i) for i in range(N)], name="time"),
    )


def _ms(frame: pd.DataFrame) -> list[int]:
    return [int(t.timestamp() * 1000) for t in frame.index]


def _arrays() -> bytes:
    frame = _frame()
    rows = [[t, *row] for t, row in zip(_ms(frame), frame.to_numpy().tolist(), strict=True)]
    return json.dumps(rows).encode()


def _records() -> bytes:
    return _frame().reset_index().to_json(orient="records", date_format="iso").encode()


def _single_record() -> bytes:
    """One candle: the interval cannot be measured, so the path's '1m' is taken unchecked."""
    return _frame().reset_index().iloc[:1].to_json(orient="records", date_format="iso")[1:-1].encode()


def _ndjson() -> bytes:
    frame = _frame().reset_index()
    return "\n".join(
        frame.iloc[[i]].to_json(orient="records", date_format="iso")[1:-1] for i in range(N)
    ).encode()


def _orient(orient: str) -> Callable[[], bytes]:
    return lambda: _frame().to_json(orient=orient, date_format="iso").encode()


# Reader name -> (file content, rows it holds). Adding a reader means adding its sample here.
SAMPLES: dict[str, tuple[Callable[[], bytes], int]] = {
    "array-of-arrays": (_arrays, N),
    "records": (_records, N),
    "split": (_orient("split"), N),
    "table": (_orient("table"), N),
    "columns": (_orient("columns"), N),
    "index": (_orient("index"), N),
    "single-record": (_single_record, 1),
    "ndjson": (_ndjson, N),
}


def test_every_registered_reader_has_a_sample():
    assert sorted(SAMPLES) == sorted(LAYOUTS)
    assert sorted(FORMAT_SAMPLES) == sorted(FORMATS)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_detection_picks_exactly_the_reader_of_the_sample(tmp_path, name):
    content, rows = SAMPLES[name]
    path = tmp_path / PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(content())
    document = load_document(read_bytes(path)[0])
    assert LAYOUTS.detecting(document) == [name]
    parsed = parse_file(path, relative_to=tmp_path)
    assert parsed.layout.startswith(name if name != "ndjson" else "ndjson-")
    frame = parsed.frame
    assert list(frame.columns) == list(CANONICAL) and parsed.rejected.empty
    assert len(frame) == rows
    assert (frame["exchange"] == "binance").all() and (frame["symbol"] == "BTC/USDT").all()
    assert (frame["interval"] == "1m").all()
    assert list(frame["time"]) == list(_frame().index[:rows])
    assert list(frame["close"]) == list(_frame()["close"][:rows])


@pytest.mark.parametrize(
    "document",
    [
        {"data": [[1, 2, 3, 4, 5, 6]]},  # a wrapper: no reader, the walk goes one level down
        {"result": {"XXBTZEUR": [[1, 2, 3, 4, 5, 6, 7, 8]], "last": 1}},
        {"open": 1, "high": 2, "low": 0, "close": 1, "volume": 3},  # no time: not a single record
        {"open": {"a": 1}, "high": {"a": 2}, "low": {"a": 0}, "close": {"a": 1}, "volume": {"a": 1}},
        {"columns": ["open"], "data": [], "schema": {"fields": []}},  # both split and table keys
        [1, 2, 3],
        "text",
    ],
)
def test_no_value_is_claimed_by_two_readers(document):
    assert len(LAYOUTS.detecting(document)) <= 1


def test_registry_names_are_unique_and_lookups_say_what_is_known():
    registry: Registry[Reader] = Registry("test")

    @registry.register
    class One(Reader):
        name = "one"

        def detect(self, value):
            return value == 1

        def read(self, value, context):
            return None

    with pytest.raises(ValueError, match="two test readers named 'one'"):
        registry.register(One)
    assert registry.detect(1) is registry["one"] and registry.detect(2) is None
    with pytest.raises(KeyError, match="no test reader named 'two' \\(known: one\\)"):
        registry["two"]


def _csv() -> bytes:
    frame = _frame().reset_index()
    return frame.assign(time=_ms(_frame())).to_csv(index=False).encode()


def _parquet() -> bytes:
    sink = io.BytesIO()
    _frame().reset_index().to_parquet(sink, index=False)
    return sink.getvalue()


def _feather() -> bytes:
    sink = io.BytesIO()
    _frame().reset_index().to_feather(sink)
    return sink.getvalue()


# Format name -> (file name, content). Adding a format means adding its sample here.
FORMAT_SAMPLES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "json": ("BTC_USDT-1m.json", _records),
    "csv": ("BTC_USDT-1m.csv", _csv),
    "parquet": ("BTC_USDT-1m.parquet", _parquet),
    "feather": ("BTC_USDT-1m.feather", _feather),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_format_detection_picks_exactly_the_format_of_the_sample(tmp_path, name):
    file_name, content = FORMAT_SAMPLES[name]
    path = tmp_path / "binance" / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(content())
    (source,) = open_sources(path, f"binance/{file_name}")
    assert FORMATS.detecting(source) == [name]
    parsed = parse_file(path, relative_to=tmp_path)
    assert parsed.format == name and parsed.rejected.empty
    assert list(parsed.frame["time"]) == list(_frame().index)
    assert list(parsed.frame["close"]) == list(_frame()["close"])
    assert (parsed.frame["symbol"] == "BTC/USDT").all() and (parsed.frame["interval"] == "1m").all()
