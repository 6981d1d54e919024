"""Every asset that writes a warehouse table, declared once: name, table, description, kinds, checks.

This table is the one asset→table mapping of the code location. The market-data assets are built from
their rows (`pipelines/defs/market_data/assets.py`: one factory, six assets that differ only in what is
declared here), the data-quality checks of every checked row sit next to their asset
(`pipelines/defs/*/checks.py` call `quality_checks` for `checked_in(group)`), the derived assets take their
table, description and kinds from here, and the README's asset graph is checked against it.

Adding a dataset is one row here (plus its ingest function in `resources/exchanges/ingest.py` and a test);
the asset, its table metadata, its three checks and its job selection follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from market_warehouse.resources.exchanges.ingest import (
    IngestResult,
    LoadContext,
    ingest_candles,
    ingest_funding_rates,
    ingest_open_interest,
    ingest_order_books,
    ingest_tickers,
    ingest_trades,
)
from market_warehouse.resources.exchanges.universe import ExchangeConfig
from market_warehouse.resources.intervals import interval_to_timedelta

INGESTION, MARKET_DATA, DERIVED, MAINTENANCE = "ingestion", "market_data", "derived", "maintenance"

# (load context, exchange client, exchange config, window start, window end, refetch) -> ingest result
Ingest = Callable[[LoadContext, object, ExchangeConfig, pd.Timestamp, pd.Timestamp, bool], IngestResult]
# (exchange config, window start, window end, now) -> why nothing was fetched for a past window, or None
PointInTimeNote = Callable[[ExchangeConfig, pd.Timestamp, pd.Timestamp, pd.Timestamp], "str | None"]


@dataclass(frozen=True)
class Dataset:
    """One asset and the table it writes.

    `checked` adds the three load checks of `pipelines/defs/quality/checks.py` (GX suite, quarantine
    fraction, unique key) next to the asset; `partitioned` says whether they read a partition window or
    what the run wrote. `ingest` and `point_in_time` are the market-data specifics: how one exchange's
    window is fetched and loaded, and the note given when a past window cannot be fetched (snapshots).
    """

    asset: str
    table: str
    group: str
    description: str
    kinds: frozenset[str]
    checked: bool = False
    partitioned: bool = True
    ingest: Ingest | None = None
    point_in_time: PointInTimeNote | None = None


def snapshot_note(
    config: ExchangeConfig, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> str | None:
    """Order books and tickers exist only now: a past window of a ccxt exchange fetches nothing."""
    if start <= now < end:
        return None
    return "point-in-time snapshot: only taken while the partition is current, nothing fetched for this one"


def trades_note(
    config: ExchangeConfig, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> str | None:
    """A real exchange serves only its recent tape (`trades_lookback`)."""
    since = now - pd.Timedelta(interval_to_timedelta(config.trades_lookback))
    if start >= since:
        return None
    return (
        f"recent trades only: nothing before {since.isoformat()} (`trades_lookback` {config.trades_lookback})"
    )


def _refetching(ingest: Callable[..., IngestResult]) -> Ingest:
    """A history ingest: `refetch` asks the exchange again for ranges the coverage ledger has answered."""
    return lambda ctx, client, cfg, start, end, refetch: ingest(ctx, client, cfg, start, end, refetch=refetch)


def _snapshots(ingest: Callable[..., IngestResult]) -> Ingest:
    """A point-in-time ingest: there is no ledger of answered ranges, so `refetch` does not apply."""
    return lambda ctx, client, cfg, start, end, _refetch: ingest(ctx, client, cfg, start, end)


def _market(
    asset: str,
    description: str,
    ingest: Ingest,
    *,
    table: str | None = None,
    note: PointInTimeNote | None = None,
) -> Dataset:
    """A market-data dataset: daily partitions of exchange data, with the three load checks."""
    kinds = frozenset({"ccxt", "pandas", "postgres"})
    return Dataset(asset, table or asset, MARKET_DATA, description, kinds, True, True, ingest, note)


def _derived(asset: str, description: str, *libraries: str, table: str | None = None) -> Dataset:
    """A derived dataset: computed with pandas (and `libraries`) from the warehouse, written back to it."""
    return Dataset(asset, table or asset, DERIVED, description, frozenset({*libraries, "pandas", "postgres"}))


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "historical_files",
        "ohlcv",
        INGESTION,
        "History files of the landing folder (JSON, NDJSON, CSV, Parquet, Feather; gzip, zip; freqtrade "
        "folders, Binance Vision and Tardis archives) loaded once per file version: candles of every price kind "
        "into ohlcv, trades into market_trades, funding rates into funding_rates; unreadable rows are "
        "quarantined, unreadable files recorded as failed in ingest_files and left in place.",
        frozenset({"postgres", "json"}),
        checked=True,
        partitioned=False,
    ),
    _market(
        "ohlcv",
        "Closed candles of every (exchange, symbol, interval, price kind) of the universe, gap-aware: traded "
        "prices, and a derivative's mark / index / premium index candles where the exchange has them "
        "(`prices:`); the instruments pulled are upserted into `instruments` from the exchange's markets.",
        _refetching(ingest_candles),
    ),
    _market(
        "market_trades",
        "Public trades: the synthetic tape of the whole day, a real exchange's recent tape.",
        _refetching(ingest_trades),
        note=trades_note,
    ),
    _market(
        "orderbook_snapshots",
        "Top-N order-book snapshots with best prices, spread and depth per side.",
        _snapshots(ingest_order_books),
        note=snapshot_note,
    ),
    _market(
        "market_metrics",
        "24h ticker metrics (prices, volumes, change, spread, Parkinson volatility).",
        _snapshots(ingest_tickers),
        note=snapshot_note,
    ),
    _market(
        "funding_rates",
        "Funding events of the universe's perpetuals (`metrics: funding_rate`): rate, mark/index price at "
        "funding, and the interval observed since the funding before (1h/4h/8h, never assumed). Replaces "
        "`metric_series`: what it wrote to timeseries_data stays there, readable, and is no longer added to.",
        _refetching(ingest_funding_rates),
    ),
    _market(
        "open_interest",
        "Open interest of the universe's derivatives (`metrics: open_interest`), amount and value per "
        "sampling interval.",
        _refetching(ingest_open_interest),
    ),
    _derived(
        "features",
        "Technical features per candle (log return, volatility, RSI, MACD, Bollinger, ATR, VWAP, volume "
        "z-score), computed per day with enough warm-up history to equal a whole-series computation.",
        "talib",
    ),
    _derived(
        "forecasts",
        "Close forecasts per series (naive, ETS, ARIMA) with 80/95 % intervals, each run registered in "
        "ml_models.",
        "statsmodels",
    ),
    _derived(
        "forecast_accuracy",
        "Fills forecasts' actuals from the candles of the day and scores every model run touched "
        "(MAE, MAPE, RMSE, bias, 80/95 % coverage, skill vs the naive run) into ml_models.metrics.",
        table="forecasts",
    ),
    _derived(
        "trading_signals",
        "Signals of the reference strategy (SMA crossover with stop-loss / take-profit), replayed from the "
        "book's inception; each day writes its own signals.",
        "talib",
    ),
    _derived(
        "backtest",
        "Simulated fills with fees into trade_history, closed round trips into bot_trades, and a "
        "backtest_results row per series from inception to the end of the day.",
        table="backtest_results",
    ),
    _derived(
        "equity_curve",
        "Equity, cash, buying power and returns of the book and of each series' sleeve at every bar close, "
        "rebuilt from the stored fills and the latest candle closes.",
    ),
    _derived(
        "risk_metrics",
        "Risk snapshots of the book and each sleeve at every bar close: positions, exposure, largest "
        "position, PnL, drawdown, Sharpe, historical VaR / CVaR 95 % and 99 %, daily loss vs limit.",
    ),
)

# The aggregates are views the nightly and hourly maintenance refresh (continuous aggregates on TimescaleDB,
# rollup tables elsewhere): declared here like every asset with a table, built in pipelines/defs/maintenance.
_AGGREGATE_KINDS = frozenset({"postgres", "view"})
DATASETS += (
    Dataset(
        "ohlcv_1h",
        "ohlcv_1h",
        MAINTENANCE,
        "Hourly OHLCV of the 1m candles per price kind (continuous aggregate or rollup table).",
        _AGGREGATE_KINDS,
        partitioned=False,
    ),
    Dataset(
        "ohlcv_1d",
        "ohlcv_1d",
        MAINTENANCE,
        "Daily OHLCV per price kind, built from ohlcv_1h.",
        _AGGREGATE_KINDS,
        partitioned=False,
    ),
)

_BY_ASSET = {d.asset: d for d in DATASETS}


def dataset(asset: str) -> Dataset:
    """The declared dataset of an asset (KeyError names the asset when it writes no declared table)."""
    return _BY_ASSET[asset]


def table_of(asset: str) -> str:
    """The warehouse table the asset writes."""
    return _BY_ASSET[asset].table


def in_group(group: str) -> tuple[Dataset, ...]:
    """The datasets of one domain, in declaration order."""
    return tuple(d for d in DATASETS if d.group == group)


def checked_in(group: str | None = None) -> tuple[Dataset, ...]:
    """The datasets whose asset carries the three load checks (of one domain, or all)."""
    return tuple(d for d in DATASETS if d.checked and (group is None or d.group == group))
