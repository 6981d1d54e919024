"""The `stream:` section of an exchange in the universe file: what to capture live and how to flush it.

```yaml
exchanges:
  binance:
    driver: binance
    symbols: [BTC/USDT, ETH/USDT]
    stream:
      symbols: [BTC/USDT]          # default: the exchange's symbols
      channels: [trades, ohlcv, orderbook, ticker]
      flush_ms: 500                # a micro-batch is written after this long ...
      flush_rows: 5000             # ... or this many rows, whichever comes first
      book_every_ms: 1000          # cadence of the top-N order-book snapshots
      book_depth: 20               # default: the exchange's orderbook_depth
      candle_interval: 1m
      ticker_every: 1m             # market_metrics grid: the newest ticker of each slot is kept
      stale_after_s: 120           # a stream with nothing committed for this long is stale
```

An exchange without a `stream:` section is not streamed. Errors name the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from market_warehouse.resources.exchanges.universe import ExchangeConfig, Universe
from market_warehouse.resources.intervals import IntervalError, interval_to_timedelta
from market_warehouse.resources.settings import ConfigurationError

CHANNELS = ("trades", "ohlcv", "orderbook", "ticker")
# Channels with a history the REST API can be asked for: their holes can be back-filled.
BACKFILLED = frozenset({"trades", "ohlcv"})
# Binance's raw `trade` stream numbers trades by trade id, its REST history (`aggTrades`, what ccxt's
# fetch_trades asks with `since`) by aggregate id: the same trade would be stored twice under two ids when a
# hole is back-filled. Streaming `aggTrade` keeps one id space on both paths.
DEFAULT_TRADES_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "binance": {"name": "aggTrade"},
    "binanceus": {"name": "aggTrade"},
}
# ccxt.pro's binance watches `miniTicker` by default, which has no bid/ask; the full 24h `ticker` has them.
DEFAULT_TICKER_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "binance": {"name": "ticker"},
    "binanceus": {"name": "ticker"},
}


@dataclass(frozen=True)
class StreamConfig:
    """What one exchange streams, and the flush and health limits of its capture."""

    exchange: ExchangeConfig
    symbols: tuple[str, ...]
    channels: tuple[str, ...] = CHANNELS
    flush_ms: int = 500
    flush_rows: int = 5000
    book_every_ms: int = 1000
    book_depth: int = 20
    candle_interval: str = "1m"
    ticker_every: str = "1m"
    stale_after_s: float = 120.0
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    log_every_s: float = 60.0
    trades_params: Mapping[str, Any] = field(default_factory=dict)
    ticker_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.exchange.name


def stream_configs(universe: Universe, only: str | None = None) -> list[StreamConfig]:
    """The streamed exchanges of `universe` (those with a `stream:` section), or just `only`."""
    configs = [
        parse_stream(config, universe.path) for config in universe.exchanges if config.stream is not None
    ]
    if only is not None:
        configs = [c for c in configs if c.name == only]
        if not configs:
            raise ConfigurationError(f"{universe.path}: exchange {only!r} has no `stream:` section")
    return configs


def parse_stream(config: ExchangeConfig, path: Any) -> StreamConfig:
    """Validate `config.stream`; every error names `path` and the key."""
    spec = config.stream or {}
    where = f"{path}: exchanges.{config.name}.stream"
    if config.is_synthetic:
        raise ConfigurationError(f"{where}: the synthetic exchange has no websocket streams")
    symbols = _strings(spec.get("symbols", list(config.symbols)), f"{where}.symbols")
    channels = _strings(spec.get("channels", list(CHANNELS)), f"{where}.channels")
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise ConfigurationError(f"{where}.channels: {unknown} not among {list(CHANNELS)}")
    interval = _interval(spec, "candle_interval", where)
    ticker_every = _interval(spec, "ticker_every", where)
    params = {
        key: spec.get(key, defaults.get(config.driver, {}))
        for key, defaults in (
            ("trades_params", DEFAULT_TRADES_PARAMS),
            ("ticker_params", DEFAULT_TICKER_PARAMS),
        )
    }
    for key, value in params.items():
        if not isinstance(value, dict):
            raise ConfigurationError(f"{where}.{key}: expected a mapping")
    return StreamConfig(
        exchange=config,
        symbols=symbols,
        channels=channels,
        flush_ms=_positive(spec, "flush_ms", 500, where, int),
        flush_rows=_positive(spec, "flush_rows", 5000, where, int),
        book_every_ms=_positive(spec, "book_every_ms", 1000, where, int),
        book_depth=_positive(spec, "book_depth", config.orderbook_depth, where, int),
        candle_interval=interval,
        ticker_every=ticker_every,
        stale_after_s=_positive(spec, "stale_after_s", 120.0, where, float),
        reconnect_base_s=_positive(spec, "reconnect_base_s", 0.5, where, float),
        reconnect_max_s=_positive(spec, "reconnect_max_s", 30.0, where, float),
        log_every_s=_positive(spec, "log_every_s", 60.0, where, float),
        trades_params=dict(params["trades_params"]),
        ticker_params=dict(params["ticker_params"]),
    )


def _interval(spec: Mapping[str, Any], key: str, where: str) -> str:
    value = str(spec.get(key, "1m"))
    try:
        interval_to_timedelta(value)
    except IntervalError as exc:
        raise ConfigurationError(f"{where}.{key}: {exc}") from None
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where}: expected a non-empty list of strings")
    return tuple(dict.fromkeys(value))


def _positive(spec: Mapping[str, Any], key: str, default: Any, where: str, kind: type) -> Any:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{where}.{key}: expected a positive number, got {value!r}")
    return kind(value)
