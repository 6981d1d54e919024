"""The `stream:` section of the universe file: defaults, and errors that name the file and the key."""

from __future__ import annotations

import pytest

from market_warehouse.resources.exchanges.universe import parse_universe
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.stream.config import CHANNELS, stream_configs


def universe(stream, driver="binance"):
    raw = {
        "exchanges": {"binance": {"driver": driver, "symbols": ["BTC/USDT", "ETH/USDT"], "intervals": ["1h"]}}
    }
    if stream is not None:
        raw["exchanges"]["binance"]["stream"] = stream
    return parse_universe(raw, "u.yaml")


def test_an_exchange_without_a_stream_section_is_not_streamed():
    assert stream_configs(universe(None)) == []
    with pytest.raises(ConfigurationError, match="u.yaml: exchange 'binance' has no `stream:` section"):
        stream_configs(universe(None), only="binance")


def test_defaults_stream_every_symbol_and_channel_and_binance_uses_agg_trades():
    (config,) = stream_configs(universe({}))
    assert config.symbols == ("BTC/USDT", "ETH/USDT")
    assert config.channels == CHANNELS
    assert config.flush_ms <= 1000  # micro-batches at most a second old by default
    assert dict(config.trades_params) == {"name": "aggTrade"}


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ({"channels": ["trades", "l2"]}, r"u.yaml: exchanges.binance.stream.channels: \['l2'\] not among"),
        ({"flush_ms": 0}, r"u.yaml: exchanges.binance.stream.flush_ms: expected a positive number, got 0"),
        ({"candle_interval": "7x"}, r"u.yaml: exchanges.binance.stream.candle_interval"),
        ({"symbols": []}, r"u.yaml: exchanges.binance.stream.symbols: expected a non-empty list"),
        (
            {"trades_params": "aggTrade"},
            r"u.yaml: exchanges.binance.stream.trades_params: expected a mapping",
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(stream, message):
    with pytest.raises(ConfigurationError, match=message):
        stream_configs(universe(stream))


def test_the_synthetic_exchange_cannot_stream():
    with pytest.raises(ConfigurationError, match="synthetic exchange has no websocket streams"):
        stream_configs(universe({}, driver="synthetic"))


def test_a_stream_section_must_be_a_mapping():
    with pytest.raises(ConfigurationError, match=r"u.yaml: exchanges.binance.stream: expected a mapping"):
        universe(["trades"])
