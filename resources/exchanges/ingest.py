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

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from resources import clock
from resources.exchanges.calendars import expected_bars, floor_time, utc
from resources.exchanges.client import (
    Backoff,
    Pulled,
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
    """What an ingest did: the load's counts, the exchange traffic, the ranges asked, rows per UTC day."""

    load: LoadResult
    stats: PullStats = field(default_factory=PullStats)
    ranges: int = 0
    days: Counter = field(default_factory=Counter)  # 'YYYY-MM-DD' -> rows fetched

    def __add__(self, other: IngestResult) -> IngestResult:
        stats = PullStats()
        stats.add(self.stats)
        stats.add(other.stats)
        return IngestResult(self.load + other.load, stats, self.ranges + other.ranges, self.days + other.days)


@dataclass(frozen=True)
class LoadContext:
    """Where and on whose behalf rows are loaded; `now` is fixed in tests."""

    engine: sa.Engine
    run_id: str | None = None
    batch_rows: int = 50_000
    now: datetime | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def current_time(self) -> pd.Timestamp:
        return utc(self.now if self.now is not None else clock.now())


@dataclass(frozen=True)
class _Cover:
    key: SeriesKey
    start: pd.Timestamp
    end: pd.Timestamp
    rows: int
    status: str


class _BatchLoader:
    """Collects fetched day-chunks and loads them through `load_frame` in batches of about `batch_rows`.

    Coverage of a chunk is recorded only after the batch holding its rows is stored. Memory is bounded by
    one batch plus one day of one series; many small days share one load (validation, scoring and upsert
    have a fixed cost per call).
    """

    def __init__(self, ctx: LoadContext, dataset: str, source: str):
        self.ctx, self.dataset, self.source = ctx, dataset, source
        self.frames: list[pd.DataFrame] = []
        self.covers: list[_Cover] = []
        self.days: list[str] = []
        self.pending = 0
        self.result = IngestResult(LoadResult(dataset))

    def add(self, frame: pd.DataFrame, day: str, stats: PullStats, cover: _Cover | None = None) -> None:
        if len(frame):
            self.frames.append(frame)
            self.pending += len(frame)
        if cover is not None and cover.end > cover.start:
            self.covers.append(cover)
        self.days.append(day)
        self.result = self.result + IngestResult(
            LoadResult(self.dataset), stats, 1, Counter({day: len(frame)})
        )
        if self.pending >= self.ctx.batch_rows:
            self.flush()

    def add_pulled(
        self,
        pulled: Pulled,
        frame: pd.DataFrame,
        key: SeriesKey,
        start: pd.Timestamp,
        day: str,
        due: int | None,
    ) -> None:
        """A fetched chunk of `key` from `start`: `frame` (its rows as stored), and its coverage up to where
        the exchange has answered, with a status from the rows fetched against the `due` ones (None: any)."""
        rows = _rows_before(pulled.frame, pulled.answered_until)
        cover = _Cover(key, start, pulled.answered_until, rows, status_of(rows, due))
        self.add(frame, day, pulled.stats, cover)

    def flush(self) -> IngestResult:
        if self.frames:
            frame = pd.concat(self.frames, ignore_index=True) if len(self.frames) > 1 else self.frames[0]
            days = sorted(set(self.days))
            label = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
            loaded = load_frame(
                self.ctx.engine,
                self.dataset,
                frame,
                run_id=self.ctx.run_id,
                partition_key=label,
                source=self.source,
                batch_rows=self.ctx.batch_rows,
                now=self.ctx.now,
            )
            self.result = self.result + IngestResult(loaded)
        if self.covers:
            with self.ctx.engine.begin() as conn:
                for c in self.covers:
                    record_coverage(
                        conn, c.key, c.start, c.end, rows=c.rows, status=c.status, source=self.source,
                        run_id=self.ctx.run_id,
                    )  # fmt: skip
        self.frames, self.covers, self.days, self.pending = [], [], [], 0
        return self.result


def day_chunks(start: pd.Timestamp, end: pd.Timestamp) -> Iterator[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """`[start, end)` cut at UTC midnights, with each piece's day (its partition key)."""
    lo = start
    while lo < end:
        hi = min(floor_time(lo, "1d") + pd.Timedelta(days=1), end)
        yield lo, hi, lo.strftime("%Y-%m-%d")
        lo = hi


def _rows_before(frame: pd.DataFrame, until: pd.Timestamp) -> int:
    return int((frame["time"] < until).sum()) if len(frame) else 0


def candle_plan(
    ctx: LoadContext,
    config: ExchangeConfig,
    symbol: str,
    interval: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    refetch: bool,
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """What to ask for: the whole window with `refetch`, else its gaps (calendar − stored − covered)."""
    if end <= start:
        return []
    if refetch:
        return [(start, end)]
    with ctx.engine.connect() as conn:
        gaps = candle_gaps(conn, config.name, symbol, interval, config.calendar, start, end)
    return [(lo, hi) for lo, hi, _ in gaps.ranges]


def ingest_candles(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    series: list[tuple[str, str]] | None = None,
    refetch: bool = False,
    ranges: dict[tuple[str, str], list[tuple[pd.Timestamp, pd.Timestamp]]] | None = None,
) -> IngestResult:
    """Closed candles of the exchange's series (default: every symbol × interval) in `[start, end)`.

    Only the missing ranges are asked (all of the window with `refetch`); `ranges` — e.g. from a gap
    report — replaces that computation. Ranges are fetched one UTC day at a time.
    """
    now = ctx.current_time()
    series = series or [(s, i) for s in config.symbols for i in config.intervals]
    loader = _BatchLoader(ctx, "ohlcv", config.source)
    for symbol, interval in series:
        window_end = min(utc(end), floor_time(now, interval))
        plan = (
            ranges.get((symbol, interval), [])
            if ranges is not None
            else candle_plan(ctx, config, symbol, interval, utc(start), window_end, refetch)
        )
        key = SeriesKey("ohlcv", config.name, symbol, interval)
        for lo, hi in plan:
            for chunk_lo, chunk_hi, day in day_chunks(lo, hi):
                expected = expected_bars(config.calendar, interval, chunk_lo, chunk_hi)
                if len(expected) == 0:
                    continue  # a closed market's night, weekend or holiday: nothing to ask
                pulled = fetch_ohlcv_range(
                    exchange,
                    symbol,
                    interval,
                    chunk_lo,
                    chunk_hi,
                    limit=config.ohlcv_limit,
                    now=now,
                    settle=config.settle,
                    backoff=ctx.backoff,
                )
                due = len(expected_bars(config.calendar, interval, chunk_lo, pulled.answered_until))
                frame = ohlcv_frame(pulled, config.name, symbol, interval, config.source)
                loader.add_pulled(pulled, frame, key, chunk_lo, day, due)
    return loader.flush()


def ingest_trades(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """Public trades of every symbol in `[start, end)`; a real exchange's tape only `trades_lookback` back."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    if not supports_history(exchange):
        start_ts = max(start_ts, now - pd.Timedelta(interval_to_timedelta(config.trades_lookback)))
    loader = _BatchLoader(ctx, "market_trades", config.source)
    for symbol in config.symbols:
        key = SeriesKey("market_trades", config.name, symbol, None)
        for lo, hi in _time_plan(ctx, key, start_ts, end_ts, refetch):
            for chunk_lo, chunk_hi, day in day_chunks(lo, hi):
                pulled = fetch_trades_range(
                    exchange,
                    symbol,
                    chunk_lo,
                    chunk_hi,
                    limit=config.trades_limit,
                    now=now,
                    settle=config.settle,
                    backoff=ctx.backoff,
                )
                loader.add_pulled(pulled, trades_frame(pulled, config.name, symbol), key, chunk_lo, day, None)
    return loader.flush()


def ingest_metrics(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """Every funding-rate / open-interest series of the exchange into `timeseries_data`, each under its
    `sources` row."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    loader = _BatchLoader(ctx, "timeseries_data", config.source)
    for series in config.metrics:
        with ctx.engine.begin() as conn:
            source_id = ensure_source(conn, config, series)
        key = SeriesKey(series.metric, config.name, series.symbol, series.interval)
        step = pd.Timedelta(interval_to_timedelta(series.interval))
        for lo, hi in _time_plan(ctx, key, start_ts, end_ts, refetch):
            for chunk_lo, chunk_hi, day in day_chunks(lo, hi):
                pulled = fetch_metric_range(
                    exchange, series, chunk_lo, chunk_hi, now=now, settle=config.settle, backoff=ctx.backoff
                )
                due = max(0, int((pulled.answered_until - chunk_lo) / step))
                frame = pulled.frame.assign(source_id=source_id)[["source_id", "time", "value"]]
                loader.add_pulled(pulled, frame, key, chunk_lo, day, due)
    return loader.flush()


def _time_plan(
    ctx: LoadContext, key: SeriesKey, start: pd.Timestamp, end: pd.Timestamp, refetch: bool
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if end <= start:
        return []
    if refetch:
        return [(start, end)]
    with ctx.engine.connect() as conn:
        return uncovered_ranges(conn, key, start, end)


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
    loader = _BatchLoader(ctx, "orderbook_snapshots", config.source)
    for at in snapshot_times(exchange, config, start, end, ctx.current_time()):
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
            for symbol in config.symbols
        ]
        loader.add(pd.DataFrame(rows), rows[0]["time"].strftime("%Y-%m-%d"), stats)
    return loader.flush()


def ingest_tickers(
    ctx: LoadContext, exchange: Any, config: ExchangeConfig, start: datetime, end: datetime
) -> IngestResult:
    """24h ticker metrics of every symbol into `market_metrics`, one row per symbol and `snapshot_every`.

    `market_metrics` rows sit on their interval's grid (a quality rule), so a snapshot is stored at the
    start of its `snapshot_every` slot with the exact observation time in `metadata.observed_at`; a second
    snapshot in the same slot updates the row instead of adding one.
    """
    loader = _BatchLoader(ctx, "market_metrics", config.source)
    for at in snapshot_times(exchange, config, start, end, ctx.current_time()):
        stats = PullStats()
        rows = []
        for symbol in config.symbols:
            row = fetch_ticker_row(
                exchange, config.name, symbol, at=at, now=ctx.current_time(), backoff=ctx.backoff, stats=stats
            )
            observed = row["time"]
            row["interval"] = config.snapshot_every
            row["time"] = floor_time(observed, config.snapshot_every)
            row["metadata"] = {"observed_at": observed.isoformat(), "window": "24h", "source": config.source}
            rows.append(row)
        loader.add(pd.DataFrame(rows), rows[0]["time"].strftime("%Y-%m-%d"), stats)
    return loader.flush()


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
