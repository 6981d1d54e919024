"""From an exchange into the warehouse: fetch → `load_frame` (validate, quarantine, upsert) → coverage.

One function per dataset, each for a window, usable from a script as well as from the Dagster assets.
Candles, trades and metric series only fetch what the coverage ledger and the stored rows say is missing
(unless `refetch`), so re-running a window costs no request and writes nothing. Coverage is recorded
after the rows are stored: a failed load leaves the range missing, to be fetched again.

Point-in-time snapshots (order books, 24h tickers) cannot be fetched for the past from a real exchange:
`snapshot_times` gives "now" when the window contains it and nothing otherwise. The synthetic exchange
has a past, so it gives a grid of `snapshot_every` over the window (a backfill fills history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from resources.exchanges.calendars import expected_bars, floor_time, utc
from resources.exchanges.client import (
    Backoff,
    PullStats,
    fetch_metric_range,
    fetch_ohlcv_range,
    fetch_order_book_row,
    fetch_ticker_row,
    fetch_trades_range,
    ohlcv_frame,
    supports_history,
    trades_frame,
)
from resources.exchanges.coverage import (
    SeriesKey,
    candle_gaps,
    record_coverage,
    status_of,
    uncovered_ranges,
)
from resources.exchanges.universe import ExchangeConfig, MetricSeries
from resources.intervals import interval_to_timedelta
from resources.models import TIMESERIES, Base, Source
from resources.warehouse.load import LoadResult, load_frame


@dataclass
class IngestResult:
    """What an ingest did: the load's counts, the exchange traffic, and the ranges asked."""

    load: LoadResult
    stats: PullStats = field(default_factory=PullStats)
    ranges: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        stats = PullStats()
        stats.add(self.stats)
        stats.add(other.stats)
        return IngestResult(self.load + other.load, stats, self.ranges + other.ranges)


@dataclass(frozen=True)
class LoadContext:
    """Where and on whose behalf rows are loaded; `now` is fixed in tests."""

    engine: sa.Engine
    run_id: str | None = None
    partition_key: str | None = None
    batch_rows: int = 50_000
    now: datetime | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def current_time(self) -> pd.Timestamp:
        return utc(self.now) if self.now is not None else pd.Timestamp.now(tz="UTC")

    def load(self, dataset: str, frame: pd.DataFrame, source: str) -> LoadResult:
        return load_frame(
            self.engine,
            dataset,
            frame,
            run_id=self.run_id,
            partition_key=self.partition_key,
            source=source,
            batch_rows=self.batch_rows,
            now=self.now,
        )


def ingest_candles(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
    ranges: list[tuple[pd.Timestamp, pd.Timestamp]] | None = None,
) -> IngestResult:
    """Closed candles of one series in `[start, end)`: the missing ranges, or all of it with `refetch`.

    `ranges` (e.g. from a gap report) replaces the computation of what is missing.
    """
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), floor_time(now, interval))
    if ranges is None:
        if end_ts <= start_ts:
            ranges = []
        elif refetch:
            ranges = [(start_ts, end_ts)]
        else:
            with ctx.engine.connect() as conn:
                gaps = candle_gaps(conn, config.name, symbol, interval, config.calendar, start_ts, end_ts)
            ranges = [(lo, hi) for lo, hi, _ in gaps.ranges]
    total = IngestResult(LoadResult("ohlcv"))
    key = SeriesKey("ohlcv", config.name, symbol, interval)
    for lo, hi in ranges:
        pulled = fetch_ohlcv_range(
            exchange,
            symbol,
            interval,
            lo,
            hi,
            limit=config.ohlcv_limit,
            now=now,
            settle=config.settle,
            backoff=ctx.backoff,
        )
        frame = ohlcv_frame(pulled, config.name, symbol, interval, config.source)
        result = ctx.load("ohlcv", frame, config.source)
        answered = pulled.frame["time"] < pulled.answered_until if len(pulled.frame) else []
        rows = int(sum(answered))
        expected = len(expected_bars(config.calendar, interval, lo, pulled.answered_until))
        _record(ctx, key, lo, pulled.answered_until, rows, status_of(rows, expected), config.source)
        total = total + IngestResult(result, pulled.stats, 1)
    return total


def ingest_trades(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """Public trades in `[start, end)`; a real exchange's tape only `trades_lookback` back from now."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    if not supports_history(exchange):
        start_ts = max(start_ts, now - pd.Timedelta(interval_to_timedelta(config.trades_lookback)))
    key = SeriesKey("market_trades", config.name, symbol, None)
    if end_ts <= start_ts:
        ranges = []
    elif refetch:
        ranges = [(start_ts, end_ts)]
    else:
        with ctx.engine.connect() as conn:
            ranges = uncovered_ranges(conn, key, start_ts, end_ts)
    total = IngestResult(LoadResult("market_trades"))
    for lo, hi in ranges:
        pulled = fetch_trades_range(
            exchange,
            symbol,
            lo,
            hi,
            limit=config.trades_limit,
            now=now,
            settle=config.settle,
            backoff=ctx.backoff,
        )
        result = ctx.load("market_trades", trades_frame(pulled, config.name, symbol), config.source)
        rows = int((pulled.frame["time"] < pulled.answered_until).sum()) if len(pulled.frame) else 0
        _record(ctx, key, lo, pulled.answered_until, rows, status_of(rows, None), config.source)
        total = total + IngestResult(result, pulled.stats, 1)
    return total


def ingest_metric(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    series: MetricSeries,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """A funding-rate or open-interest series into `timeseries_data`, under its `sources` row."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    with ctx.engine.begin() as conn:
        source_id = ensure_source(conn, config, series)
    key = SeriesKey(series.metric, config.name, series.symbol, series.interval)
    if end_ts <= start_ts:
        ranges = []
    elif refetch:
        ranges = [(start_ts, end_ts)]
    else:
        with ctx.engine.connect() as conn:
            ranges = uncovered_ranges(conn, key, start_ts, end_ts)
    total = IngestResult(LoadResult("timeseries_data"))
    step = pd.Timedelta(interval_to_timedelta(series.interval))
    for lo, hi in ranges:
        pulled = fetch_metric_range(
            exchange, series, lo, hi, now=now, settle=config.settle, backoff=ctx.backoff
        )
        frame = pulled.frame.assign(source_id=source_id)[["source_id", "time", "value"]]
        result = ctx.load("timeseries_data", frame, config.source)
        rows = int((pulled.frame["time"] < pulled.answered_until).sum()) if len(pulled.frame) else 0
        expected = max(0, int((pulled.answered_until - lo) / step))
        _record(ctx, key, lo, pulled.answered_until, rows, status_of(rows, expected), config.source)
        total = total + IngestResult(result, pulled.stats, 1)
    return total


def snapshot_times(exchange: Any, config: ExchangeConfig, start: datetime, end: datetime, now: datetime):
    """When to take point-in-time snapshots for the window `[start, end)` (see the module docstring)."""
    start_ts, end_ts, now_ts = utc(start), utc(end), utc(now)
    if supports_history(exchange):
        step = pd.Timedelta(interval_to_timedelta(config.snapshot_every))
        first = floor_time(start_ts, config.snapshot_every)
        first = first if first >= start_ts else first + step
        return list(pd.date_range(first, min(end_ts, now_ts + pd.Timedelta(1)), freq=step, inclusive="left"))
    return [None] if start_ts <= now_ts < end_ts else []


def ingest_order_books(
    ctx: LoadContext, exchange: Any, config: ExchangeConfig, start: datetime, end: datetime
) -> IngestResult:
    """Top-`orderbook_depth` snapshots of every symbol, at `snapshot_times`."""
    stats = PullStats()
    rows = [
        fetch_order_book_row(
            exchange,
            config.name,
            symbol,
            config.orderbook_depth,
            at=at,
            now=ctx.current_time(),
            backoff=ctx.backoff,
            stats=stats,
        )
        for at in snapshot_times(exchange, config, start, end, ctx.current_time())
        for symbol in config.symbols
    ]
    result = ctx.load("orderbook_snapshots", pd.DataFrame(rows), config.source) if rows else None
    return IngestResult(result or LoadResult("orderbook_snapshots"), stats, len(rows))


def ingest_tickers(
    ctx: LoadContext, exchange: Any, config: ExchangeConfig, start: datetime, end: datetime
) -> IngestResult:
    """24h ticker metrics of every symbol into `market_metrics`, one row per symbol and `snapshot_every`.

    `market_metrics` rows sit on their interval's grid (a quality rule), so a snapshot is stored at the
    start of its `snapshot_every` slot with the exact observation time in `metadata.observed_at`; a second
    snapshot in the same slot updates the row instead of adding one.
    """
    stats = PullStats()
    rows = []
    for at in snapshot_times(exchange, config, start, end, ctx.current_time()):
        for symbol in config.symbols:
            row = fetch_ticker_row(
                exchange, config.name, symbol, at=at, now=ctx.current_time(), backoff=ctx.backoff, stats=stats
            )
            observed = row["time"]
            row["interval"] = config.snapshot_every
            row["time"] = floor_time(observed, config.snapshot_every)
            row["metadata"] = {"observed_at": observed.isoformat(), "window": "24h", "source": config.source}
            rows.append(row)
    result = ctx.load("market_metrics", pd.DataFrame(rows), config.source) if rows else None
    return IngestResult(result or LoadResult("market_metrics"), stats, len(rows))


def ensure_source(conn: sa.Connection, config: ExchangeConfig, series: MetricSeries) -> int:
    """The `sources` row of a metric series (created on first use): its id keys `timeseries_data`."""
    name = f"{config.name}:{series.symbol}:{series.metric}:{series.interval}"
    conn.execute(
        pg_insert(Source)
        .values(
            name=name,
            kind="exchange",
            exchange=config.name,
            symbol=series.symbol,
            metric=series.metric,
            interval=series.interval,
            unit=series.unit,
            description=f"{series.metric.replace('_', ' ')} of {series.symbol} on {config.name}",
            config={"driver": config.driver, "source": config.source},
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return int(conn.execute(sa.select(Source.id).where(Source.name == name)).scalar_one())


def rows_in_window(
    engine: sa.Engine,
    dataset: str,
    start: datetime,
    end: datetime,
    *,
    exchanges: list[str] | None = None,
    source_ids: list[int] | None = None,
) -> int:
    """Rows of `dataset` in `[start, end)` for the given exchanges (or sources): a partition's row count."""
    table = Base.metadata.tables[dataset]
    time_column = table.c[TIMESERIES[dataset].time_column]
    query = (
        sa.select(sa.func.count()).select_from(table).where(time_column >= utc(start), time_column < utc(end))
    )
    if exchanges is not None and "exchange" in table.c:
        query = query.where(table.c.exchange.in_(exchanges))
    if source_ids is not None and "source_id" in table.c:
        query = query.where(table.c.source_id.in_(source_ids))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _record(
    ctx: LoadContext,
    key: SeriesKey,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rows: int,
    status: str,
    source: str,
) -> None:
    if end <= start:
        return
    with ctx.engine.begin() as conn:
        record_coverage(conn, key, start, end, rows=rows, status=status, source=source, run_id=ctx.run_id)
