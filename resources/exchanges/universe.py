"""The universe of market data to pull: exchanges × symbols × intervals, from a YAML file.

The file is `MW_UNIVERSE` when set, else the small demo universe shipped next to this module (offline
synthetic exchanges only); `resources.universe_file` finds and reads it. Errors name the file and the key
so a typo is found without reading code.
Keys this module does not know are kept (`Universe.settings`, `ExchangeConfig.extra`) so other parts of
the project (retention, compression) can add their own settings to the same file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from market_warehouse.resources.intervals import IntervalError, interval_to_timedelta, validate_interval
from market_warehouse.resources.models import (
    PRICE_KINDS,  # candle price kinds: trade, and a derivative's mark/index/premium
)
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.universe_file import file_version, read_document, universe_path

SYNTHETIC = "synthetic"
TWENTY_FOUR_SEVEN = "24/7"
METRICS = {
    # metric -> (default interval, unit). Funding has no interval to configure: the exchange's funding times
    # are what they are (1h, 4h, 8h, varying per symbol and over time) and the observed spacing is stored.
    "funding_rate": (None, "ratio per funding period"),
    "open_interest": ("1h", "base currency amount"),
}

_EXCHANGE_KEYS = {
    "driver",
    "calendar",
    "symbols",
    "intervals",
    "orderbook_depth",
    "metrics",
    "options",
    "rate_limit_ms",
    "ohlcv_limit",
    "trades_limit",
    "urls",
    "seed",
    "snapshot_every",
    "settle",
    "trades_lookback",
    "stream",
    "prices",
    "include_inactive",
}


@dataclass(frozen=True)
class MetricSeries:
    """One derivative series of an exchange: funding rates (interval None: the observed funding times) or open
    interest sampled every `interval`."""

    metric: str
    symbol: str
    interval: str | None = None

    @property
    def unit(self) -> str:
        return METRICS[self.metric][1]


@dataclass(frozen=True)
class ExchangeConfig:
    """One exchange of the universe. `name` is what the warehouse stores in its `exchange` columns."""

    name: str
    driver: str
    symbols: tuple[str, ...]
    intervals: tuple[str, ...]
    calendar: str = TWENTY_FOUR_SEVEN
    orderbook_depth: int = 20
    metrics: tuple[MetricSeries, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    rate_limit_ms: int | None = None
    ohlcv_limit: int = 1000
    trades_limit: int = 1000
    urls: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    snapshot_every: str = "15m"
    # Candles missing this long after they closed count as answered-empty in the coverage ledger.
    settle: str = "2m"
    # A real exchange's tape is pulled for this long back from now at most (recent trades, not history).
    trades_lookback: str = "1h"
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The `stream:` section (live capture, validated by `resources.stream.config`); None: not streamed.
    stream: Mapping[str, Any] | None = None
    # Candle price kinds pulled for the contract symbols (spot has traded prices only).
    prices: tuple[str, ...] = ("trade",)
    # Pull instruments the exchange marks inactive (delisted, halted) too; default: skip them, reported.
    include_inactive: bool = False

    def prices_of(self, symbol: str) -> tuple[str, ...]:
        """The candle price kinds pulled for `symbol`: a contract's configured ones (a ccxt unified symbol
        names a settle currency after ':' exactly when it is a contract), traded prices only for spot."""
        return self.prices if ":" in symbol else tuple(p for p in self.prices if p == "trade")

    @property
    def is_synthetic(self) -> bool:
        return self.driver == SYNTHETIC

    @property
    def source(self) -> str:
        """Provenance written with every row: 'ccxt:binance', 'synthetic:7'."""
        return f"synthetic:{self.seed}" if self.is_synthetic else f"ccxt:{self.driver}"


@dataclass(frozen=True)
class Universe:
    path: Path
    exchanges: tuple[ExchangeConfig, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def exchange(self, name: str) -> ExchangeConfig:
        for config in self.exchanges:
            if config.name == name:
                return config
        known = ", ".join(c.name for c in self.exchanges)
        raise ConfigurationError(f"{self.path}: no exchange {name!r} in the universe (known: {known})")

    def series(self) -> Iterator[tuple[ExchangeConfig, str, str]]:
        """Every (exchange, symbol, interval) candle series."""
        for config in self.exchanges:
            for symbol in config.symbols:
                for interval in config.intervals:
                    yield config, symbol, interval


def load_universe(path: str | os.PathLike | None = None) -> Universe:
    resolved = universe_path(path)
    return _load(resolved, file_version(resolved))


@cache
def _load(path: Path, version: int) -> Universe:
    # Cached by modification time: assets call this per run, editing the file takes effect immediately.
    return parse_universe(read_document(path, version), path)


def parse_universe(raw: Any, path: Path) -> Universe:
    """Validate a parsed YAML document; every error names `path` and the offending key."""
    if not isinstance(raw, dict) or not isinstance(raw.get("exchanges"), dict) or not raw["exchanges"]:
        raise ConfigurationError(f"{path}: expected a mapping `exchanges:` with at least one exchange")
    exchanges = tuple(_exchange(name, spec, path) for name, spec in raw["exchanges"].items())
    settings = {key: value for key, value in raw.items() if key != "exchanges"}
    return Universe(path=path, exchanges=exchanges, settings=settings)


def _exchange(name: Any, spec: Any, path: Path) -> ExchangeConfig:
    where = f"{path}: exchanges.{name}"
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{path}: exchange names must be non-empty strings, got {name!r}")
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where}: expected a mapping")
    driver = str(spec.get("driver", name))
    if driver != SYNTHETIC:
        import ccxt

        if driver not in ccxt.exchanges:
            raise ConfigurationError(
                f"{where}.driver: {driver!r} is neither 'synthetic' nor a ccxt exchange id"
            )
    symbols = _string_list(spec.get("symbols"), f"{where}.symbols")
    intervals = _string_list(spec.get("intervals"), f"{where}.intervals")
    for interval in intervals:
        _check_interval(interval, f"{where}.intervals")
    calendar = str(spec.get("calendar", TWENTY_FOUR_SEVEN))
    _check_calendar(calendar, f"{where}.calendar")
    snapshot_every = str(spec.get("snapshot_every", "15m"))
    _check_interval(snapshot_every, f"{where}.snapshot_every")
    settle = str(spec.get("settle", "2m"))
    _check_interval(settle, f"{where}.settle")
    trades_lookback = str(spec.get("trades_lookback", "1h"))
    _check_interval(trades_lookback, f"{where}.trades_lookback")
    metrics = tuple(
        _metric(item, f"{where}.metrics[{i}]") for i, item in enumerate(spec.get("metrics") or [])
    )
    for key in ("options", "urls", "stream"):
        if not isinstance(spec.get(key) or {}, dict):
            raise ConfigurationError(f"{where}.{key}: expected a mapping")
    return ExchangeConfig(
        name=name,
        driver=driver,
        symbols=symbols,
        intervals=intervals,
        calendar=calendar,
        orderbook_depth=_positive_int(spec.get("orderbook_depth", 20), f"{where}.orderbook_depth"),
        metrics=metrics,
        options=dict(spec.get("options") or {}),
        rate_limit_ms=(
            None
            if spec.get("rate_limit_ms") is None
            else _positive_int(spec["rate_limit_ms"], f"{where}.rate_limit_ms")
        ),
        ohlcv_limit=_positive_int(spec.get("ohlcv_limit", 1000), f"{where}.ohlcv_limit"),
        trades_limit=_positive_int(spec.get("trades_limit", 1000), f"{where}.trades_limit"),
        urls=dict(spec.get("urls") or {}),
        seed=int(spec.get("seed", 0)),
        snapshot_every=snapshot_every,
        settle=settle,
        trades_lookback=trades_lookback,
        extra={key: value for key, value in spec.items() if key not in _EXCHANGE_KEYS},
        stream=None if spec.get("stream") is None else dict(spec["stream"]),
        prices=_prices(spec.get("prices", ["trade"]), f"{where}.prices"),
        include_inactive=_flag(spec.get("include_inactive", False), f"{where}.include_inactive"),
    )


def _metric(item: Any, where: str) -> MetricSeries:
    if not isinstance(item, dict) or "metric" not in item or "symbol" not in item:
        raise ConfigurationError(f"{where}: expected a mapping with `metric` and `symbol`")
    metric = str(item["metric"])
    if metric not in METRICS:
        raise ConfigurationError(f"{where}.metric: {metric!r} is not one of {sorted(METRICS)}")
    if metric == "funding_rate":
        if "interval" in item:
            raise ConfigurationError(
                f"{where}.interval: funding times are observed, not configured (the exchange's schedule, "
                "1h/4h/8h, varies per symbol and over time); remove the key"
            )
        return MetricSeries(metric=metric, symbol=str(item["symbol"]))
    interval = str(item.get("interval", METRICS[metric][0]))
    _check_interval(interval, f"{where}.interval")
    return MetricSeries(metric=metric, symbol=str(item["symbol"]), interval=interval)


def _prices(value: Any, where: str) -> tuple[str, ...]:
    kinds = _string_list(value, where)
    unknown = [k for k in kinds if k not in PRICE_KINDS]
    if unknown:
        raise ConfigurationError(f"{where}: {unknown} not among the price kinds {list(PRICE_KINDS)}")
    return kinds


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: expected true or false, got {value!r}")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where}: expected a non-empty list of strings")
    if len(set(value)) != len(value):
        raise ConfigurationError(f"{where}: duplicate entries in {value}")
    return tuple(value)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _check_interval(interval: str, where: str) -> None:
    try:
        validate_interval(interval)
        interval_to_timedelta(interval)
    except IntervalError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _check_calendar(calendar: str, where: str) -> None:
    if calendar == TWENTY_FOUR_SEVEN:
        return
    import exchange_calendars

    if calendar not in exchange_calendars.get_calendar_names(include_aliases=True):
        raise ConfigurationError(
            f"{where}: {calendar!r} is not '24/7' nor an exchange_calendars code (e.g. XNYS, XLON)"
        )
