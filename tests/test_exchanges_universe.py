"""The universe YAML: the shipped demo, `MW_UNIVERSE`, and errors that name the file and the key."""

from __future__ import annotations

import textwrap

import pytest

from market_warehouse.resources.exchanges.universe import load_universe
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.universe_file import DEFAULT_UNIVERSE


def write(tmp_path, text: str):
    path = tmp_path / "universe.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_universe_is_small_offline_and_covers_both_calendars(monkeypatch):
    monkeypatch.delenv("MW_UNIVERSE", raising=False)
    universe = load_universe()

    assert universe.path == DEFAULT_UNIVERSE.resolve()
    assert all(c.is_synthetic for c in universe.exchanges)
    assert {c.calendar for c in universe.exchanges} == {"24/7", "XNYS"}
    series = list(universe.series())
    assert 2 <= len(series) <= 8
    crypto = universe.exchange("synthetic")
    assert crypto.source == f"synthetic:{crypto.seed}"
    assert {m.metric for m in crypto.metrics} == {"funding_rate", "open_interest"}


def test_mw_universe_points_elsewhere_and_unknown_keys_are_kept(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        """
        retention: {ohlcv_1m: 30d}
        exchanges:
          binance:
            symbols: [BTC/USDT]
            intervals: [1m, 1h]
            rate_limit_ms: 120
            options: {defaultType: spot}
            compression_after: 7d
            metrics:
              - {metric: open_interest, symbol: BTC/USDT:USDT, interval: 5m}
        """,
    )
    monkeypatch.setenv("MW_UNIVERSE", str(path))
    universe = load_universe()

    binance = universe.exchange("binance")
    assert binance.driver == "binance" and binance.source == "ccxt:binance"
    assert binance.rate_limit_ms == 120 and binance.options == {"defaultType": "spot"}
    assert binance.metrics[0].interval == "5m" and binance.metrics[0].unit
    assert binance.extra == {"compression_after": "7d"}
    assert universe.settings == {"retention": {"ohlcv_1m": "30d"}}
    assert [(s, i) for _, s, i in universe.series()] == [("BTC/USDT", "1m"), ("BTC/USDT", "1h")]


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ("x:\n  driver: nosuchexchange\n  symbols: [A/B]\n  intervals: [1m]", "exchanges.x.driver", "ccxt"),
        ("x:\n  driver: synthetic\n  symbols: [A/B]\n  intervals: [1q]", "exchanges.x.intervals", "1q"),
        ("x:\n  driver: synthetic\n  intervals: [1m]", "exchanges.x.symbols", "non-empty list"),
        (
            "x:\n  driver: synthetic\n  symbols: [A/B]\n  intervals: [1m]\n  calendar: MOON",
            "exchanges.x.calendar",
            "MOON",
        ),
        (
            "x:\n  driver: synthetic\n  symbols: [A/B]\n  intervals: [1m]\n  orderbook_depth: 0",
            "orderbook_depth",
            "positive",
        ),
        (
            "x:\n  driver: synthetic\n  symbols: [A/B]\n  intervals: [1m]\n  metrics: [{metric: iv, symbol: A/B}]",
            "metrics[0]",
            "iv",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, body, where, says):
    path = write(tmp_path, "exchanges:\n" + textwrap.indent(body, "  ") + "\n")
    with pytest.raises(ConfigurationError) as error:
        load_universe(path)
    message = str(error.value)
    assert str(path) in message and where in message and says in message


def test_missing_file_and_bad_yaml_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_universe(tmp_path / "nope.yaml")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_universe(write(tmp_path, "exchanges: [\n"))
    with pytest.raises(ConfigurationError, match="at least one exchange"):
        load_universe(write(tmp_path, "exchanges: {}\n"))
