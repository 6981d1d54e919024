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

from market_warehouse.resources import clock
from market_warehouse.resources.exchanges.calendars import expected_bars, floor_time, utc
from market_warehouse.resources.exchanges.client import (
    Backoff,
    Pulled,
    PullStats,
    call,
    fetch_funding_range,
    fetch_ohlcv_range,
    fetch_open_interest_range,
    fetch_order_book_row,
    fetch_ticker_row,
    fetch_trades_range,
    observed_intervals,
    ohlcv_frame,
    supports_history,
    supports_price,
    trades_frame,
)
from market_warehouse.resources.exchanges.coverage import (
    SeriesKey,
    candle_gaps,
    candle_key,
    record_coverage,
    status_of,
    uncovered_ranges,
)
from market_warehouse.resources.exchanges.instruments import Selection, instruments_frame, select_symbols
from market_warehouse.resources.exchanges.universe import ExchangeConfig, MetricSeries
from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.models import TIMESERIES, Base, FundingRate
from market_warehouse.resources.warehouse.load import LoadResult, load_frame
from market_warehouse.resources.warehouse.ops.instruments import upsert_instruments


@dataclass
class IngestResult:
    """What an ingest did: the load's counts, the exchange traffic, the ranges asked, rows per UTC day."""

    load: LoadResult
    stats: PullStats = field(default_factory=PullStats)
    ranges: int = 0
    days: Counter = field(default_factory=Counter)  # 'YYYY-MM-DD' -> rows fetched
    # What was not pulled and why (a symbol unknown to or inactive on the exchange, a price kind it lacks).
    notes: tuple[str, ...] = ()

    def __add__(self, other: IngestResult) -> IngestResult:
        stats = PullStats()
        stats.add(self.stats)
        stats.add(other.stats)
        notes = tuple(dict.fromkeys(self.notes + other.notes))
        return IngestResult(
            self.load + other.load, stats, self.ranges + other.ranges, self.days + other.days, notes
        )


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

    def note(self, notes: list[str]) -> None:
        """What this pull skipped, with why: carried in the result (the asset's metadata shows it)."""
        self.result = self.result + IngestResult(LoadResult(self.dataset), notes=tuple(notes))

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


def sync_instruments(ctx: LoadContext, exchange: Any, config: ExchangeConfig, wanted: list[str]) -> Selection:
    """The exchange's markets (ccxt `load_markets()`) of the `wanted` symbols upserted into `instruments`,
    and which of them a pull may ask for (known to the exchange and active, unless `include_inactive`)."""
    stats = PullStats()
    markets = call(exchange, "load_markets", backoff=ctx.backoff, stats=stats)
    chosen = select_symbols(markets, wanted, config.include_inactive)
    known = {symbol: markets[symbol] for symbol in wanted if symbol in markets}
    frame = instruments_frame(known, config.name, getattr(exchange, "precisionMode", None), config.source)
    if len(frame):
        with ctx.engine.begin() as conn:
            upsert_instruments(conn, frame, seen_at=ctx.current_time())
    return chosen


def candle_series(
    exchange: Any, config: ExchangeConfig, chosen: Selection
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every (symbol, interval, price kind) to pull, and the price kinds left out with why: spot has traded
    prices only; a derivative's mark/index/premium index candles only where the exchange has the method."""
    series, notes = [], []
    for symbol in chosen.symbols:
        for price in config.prices:
            if price != "trade" and symbol not in chosen.contracts:
                notes.append(f"{symbol}: {price} candles: spot has traded prices only")
            elif not supports_price(exchange, price):
                notes.append(_lacks(config, symbol, price))
            else:
                series.extend((symbol, interval, price) for interval in config.intervals)
    return series, notes


def _lacks(config: ExchangeConfig, symbol: str, price: str) -> str:
    return f"{symbol}: {price} candles: {config.driver} has none in ccxt (`has` says no), not pulled"


def candle_plan(
    ctx: LoadContext,
    config: ExchangeConfig,
    symbol: str,
    interval: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    refetch: bool,
    price: str = "trade",
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """What to ask for: the whole window with `refetch`, else its gaps (calendar − stored − covered)."""
    if end <= start:
        return []
    if refetch:
        return [(start, end)]
    with ctx.engine.connect() as conn:
        gaps = candle_gaps(conn, config.name, symbol, interval, config.calendar, start, end, price)
    return [(lo, hi) for lo, hi, _ in gaps.ranges]


def _with_price(key: tuple[str, ...]) -> tuple[str, str, str]:
    """A candle series as (symbol, interval, price kind); a pair (symbol, interval) means traded prices."""
    symbol, interval, *price = key
    return symbol, interval, price[0] if price else "trade"


def ingest_candles(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    series: list[tuple[str, ...]] | None = None,
    refetch: bool = False,
    ranges: dict[tuple[str, ...], list[tuple[pd.Timestamp, pd.Timestamp]]] | None = None,
) -> IngestResult:
    """Closed candles of the exchange's series (default: every symbol × interval × price kind the exchange
    has) in `[start, end)`.

    Only the missing ranges are asked (all of the window with `refetch`); `ranges` — e.g. from a gap
    report, keyed (symbol, interval[, price]) — replaces that computation. Ranges are fetched one UTC day
    at a time. Symbols the exchange does not list, or lists as inactive, are skipped and reported.
    """
    now = ctx.current_time()
    loader = _BatchLoader(ctx, "ohlcv", config.source)
    wanted = list(dict.fromkeys(k[0] for k in (series or ranges or {}))) or list(config.symbols)
    chosen = sync_instruments(ctx, exchange, config, wanted)
    loader.note(chosen.notes())
    if series is None and ranges is None:
        plan_series, notes = candle_series(exchange, config, chosen)
        loader.note(notes)
    else:
        asked = [_with_price(k) for k in (series or list(ranges or {})) if k[0] in chosen.symbols]
        plan_series = [k for k in asked if supports_price(exchange, k[2])]
        loader.note(
            [
                _lacks(config, symbol, price)
                for symbol, _, price in asked
                if not supports_price(exchange, price)
            ]
        )
    plans = {_with_price(k): v for k, v in (ranges or {}).items()}
    for symbol, interval, price in plan_series:
        window_end = min(utc(end), floor_time(now, interval))
        plan = (
            plans.get((symbol, interval, price), [])
            if ranges is not None
            else candle_plan(ctx, config, symbol, interval, utc(start), window_end, refetch, price)
        )
        key = candle_key(config.name, symbol, interval, price)
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
                    price=price,
                )
                due = len(expected_bars(config.calendar, interval, chunk_lo, pulled.answered_until))
                frame = ohlcv_frame(pulled, config.name, symbol, interval, config.source, price)
                loader.add_pulled(pulled, frame, key, chunk_lo, day, due)
    result = loader.flush()
    chosen.check(config.name)
    return result


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


def _derivatives(
    ctx: LoadContext, exchange: Any, config: ExchangeConfig, metric: str, loader: _BatchLoader
) -> tuple[list[MetricSeries], Selection]:
    """The universe's `metric` series of the exchange whose symbol may be pulled (inactive ones reported),
    and the selection (its unknown symbols fail the pull once the others are loaded)."""
    wanted = [m for m in config.metrics if m.metric == metric]
    chosen = sync_instruments(ctx, exchange, config, [m.symbol for m in wanted])
    loader.note(chosen.notes())
    return [m for m in wanted if m.symbol in chosen.symbols], chosen


def ingest_funding_rates(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """Funding events of every `funding_rate` series of the exchange into `funding_rates`, each with the
    interval observed since the funding before it (stored or in the same pull), never an assumed one."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    loader = _BatchLoader(ctx, "funding_rates", config.source)
    chosen_series, chosen = _derivatives(ctx, exchange, config, "funding_rate", loader)
    for series in chosen_series:
        key = SeriesKey("funding_rates", config.name, series.symbol, None)
        pulled_last: pd.Timestamp | None = None  # rows of earlier days may still wait in the loader's batch
        for lo, hi in _time_plan(ctx, key, start_ts, end_ts, refetch):
            for chunk_lo, chunk_hi, day in day_chunks(lo, hi):
                pulled = fetch_funding_range(
                    exchange, series.symbol, chunk_lo, chunk_hi, now=now, settle=config.settle,
                    backoff=ctx.backoff,
                )  # fmt: skip
                stored = _last_funding(ctx, key, chunk_lo)
                previous = max((t for t in (stored, pulled_last) if t is not None), default=None)
                if len(pulled.frame):
                    pulled_last = utc(pulled.frame["time"].iloc[-1])
                frame = pulled.frame.assign(
                    exchange=config.name,
                    symbol=series.symbol,
                    interval=observed_intervals(pulled.frame["time"], previous).to_numpy(),
                )
                loader.add_pulled(pulled, frame, key, chunk_lo, day, None)
    result = loader.flush()
    chosen.check(config.name)
    return result


def _last_funding(ctx: LoadContext, key: SeriesKey, before: pd.Timestamp) -> pd.Timestamp | None:
    """The stored funding time just before `before`, if nothing between them is unasked: the first event
    of a pull measures its interval from it (across a hole it would measure the hole, not the schedule)."""
    with ctx.engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(FundingRate.time)).where(
                FundingRate.exchange == key.exchange,
                FundingRate.symbol == key.symbol,
                FundingRate.time < before,
            )
        ).scalar()
        if last is None or uncovered_ranges(conn, key, utc(last), before):
            return None
    return utc(last)


def ingest_open_interest(
    ctx: LoadContext,
    exchange: Any,
    config: ExchangeConfig,
    start: datetime,
    end: datetime,
    *,
    refetch: bool = False,
) -> IngestResult:
    """Open interest of every `open_interest` series of the exchange into `open_interest`, per interval."""
    now = ctx.current_time()
    start_ts, end_ts = utc(start), min(utc(end), now)
    loader = _BatchLoader(ctx, "open_interest", config.source)
    chosen_series, chosen = _derivatives(ctx, exchange, config, "open_interest", loader)
    for series in chosen_series:
        key = SeriesKey("open_interest", config.name, series.symbol, series.interval)
        step = pd.Timedelta(interval_to_timedelta(series.interval))
        for lo, hi in _time_plan(ctx, key, start_ts, end_ts, refetch):
            for chunk_lo, chunk_hi, day in day_chunks(lo, hi):
                pulled = fetch_open_interest_range(
                    exchange, series.symbol, series.interval, chunk_lo, chunk_hi, now=now,
                    settle=config.settle, backoff=ctx.backoff,
                )  # fmt: skip
                due = max(0, int((pulled.answered_until - chunk_lo) / step))
                frame = pulled.frame.assign(
                    exchange=config.name, symbol=series.symbol, interval=series.interval
                )
                loader.add_pulled(pulled, frame, key, chunk_lo, day, due)
    result = loader.flush()
    chosen.check(config.name)
    return result


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


def rows_in_window(
    engine: sa.Engine,
    dataset: str,
    start: datetime,
    end: datetime,
    *,
    exchanges: list[str] | None = None,
) -> int:
    """Rows of `dataset` in `[start, end)` for the given exchanges: a partition's row count."""
    table = Base.metadata.tables[dataset]
    time_column = table.c[TIMESERIES[dataset].time_column]
    query = (
        sa.select(sa.func.count()).select_from(table).where(time_column >= utc(start), time_column < utc(end))
    )
    if exchanges is not None and "exchange" in table.c:
        query = query.where(table.c.exchange.in_(exchanges))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
