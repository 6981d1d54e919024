"""The capture service: ccxt.pro watchers -> micro-batches -> `load_frame`, with holes recorded and repaired.

One asyncio task per (symbol, channel) awaits ccxt.pro (`watch_trades`, `watch_ohlcv`, `watch_order_book`,
`watch_ticker`) and appends rows to the channel's pending list; one flush task writes everything pending
every `flush_ms` or as soon as `flush_rows` rows wait, through `resources.warehouse.load.load_frame` (the
validation, quarantine and idempotent upsert every other source uses), in a writer process of its own
(`resources.stream.writer`) so receiving waits neither for the database nor for the GIL. A watcher that
fails with a transient error (the connection dropped, a book out of sequence) opens a hole from the last
exchange time it saw, waits a jittered back-off and subscribes again; its first message after that
closes the hole, and trades and candles of the hole are back-filled over REST (`resources.exchanges.client`),
the hole marked `filled` or `unfilled`. A restart does the same from the last committed time of the previous
run. Stopping (SIGTERM) flushes what waits.

Not lost, not doubled: trades are keyed by the exchange's id (duplicates after a resubscribe are dropped
before the batch, and the upsert is idempotent anyway), candles by open time (only closed candles, i.e.
once a later candle of the series has been seen), snapshots and tickers by their exchange time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import ccxt.pro
import numpy as np
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.exchanges.calendars import floor_time
from market_warehouse.resources.exchanges.client import (
    Backoff,
    _trade_key,
    build_exchange,
    fetch_ohlcv_range,
    fetch_trades_range,
    ohlcv_frame,
    rebase_urls,
    trades_frame,
)
from market_warehouse.resources.exchanges.coverage import SeriesKey
from market_warehouse.resources.intervals import interval_to_timedelta
from market_warehouse.resources.retry import classify
from market_warehouse.resources.stream.config import BACKFILLED, StreamConfig
from market_warehouse.resources.stream.frames import (
    DATASET,
    book_row,
    candle_row,
    ticker_metrics_row,
    trade_row,
)
from market_warehouse.resources.stream.ledger import (
    Heartbeat,
    close_gap,
    last_seen,
    open_gap,
    record_stream_coverage,
    write_heartbeats,
)
from market_warehouse.resources.stream.writer import make_writer
from market_warehouse.resources.warehouse.load import load_frame

log = logging.getLogger(__name__)

SEEN_TRADE_IDS = 200_000  # per symbol: enough to recognise what a resubscribe repeats
# ccxt.pro keeps the newest `tradesLimit` trades per symbol (default 1,000) and hands out those that arrived
# since the last watch: more between two watches and the oldest are gone. A burst that fills the cache is
# treated as a hole (reason 'overflow'), back-filled over REST like a disconnect.
TRADES_CACHE = 20_000
WINDOW = timedelta(minutes=1)
LEDGER_EVERY_S = 1.0  # heartbeats and coverage are written at most this often (and at stop)  # rows per minute and lag percentiles are over the last minute


def build_stream_exchange(
    config: StreamConfig, *, api_base_url: str | None = None, ws_base_url: str | None = None
):
    """The ccxt.pro exchange of `config`; `api_base_url` / `ws_base_url` swap scheme and host of its REST and
    websocket URLs (keeping their paths), which is how tests point it at local servers."""
    options = {"tradesLimit": TRADES_CACHE, **dict(config.exchange.options)}
    exchange = getattr(ccxt.pro, config.exchange.driver)(
        {"enableRateLimit": True, "newUpdates": True, "options": options}
    )
    api = exchange.urls.get("api")
    if api_base_url:
        api = rebase_urls(api, api_base_url)
    if ws_base_url:
        api = rebase_urls(api, ws_base_url, scheme="ws")
    if config.exchange.urls:
        api = {**api, **config.exchange.urls}
    exchange.urls["api"] = api
    return exchange


def _ms_time(ms: int | float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _earliest(channel: str, items: Any) -> int | None:
    """The earliest exchange time (ms) of what ccxt.pro returned, repeats included: where data flows again."""
    if channel == "trades":
        stamps = [t.get("timestamp") for t in items]
    elif channel == "ohlcv":
        stamps = [c[0] for c in items]
    else:
        stamps = [items.get("timestamp")]
    stamps = [int(t) for t in stamps if isinstance(t, (int, float))]
    return min(stamps) if stamps else None


def percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    """p50 and p99 of `values`, None for none."""
    if len(values) == 0:
        return None, None
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


@dataclass
class Channel:
    """One (symbol, channel) stream: what waits to be written, where it stands, its hole if any."""

    symbol: str
    name: str  # 'trades', 'ohlcv', 'orderbook', 'ticker'
    status: str = "running"
    pending: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # epoch seconds, one per pending row
    last_exchange_ms: int | None = None  # newest exchange time received
    last_arrival: datetime | None = None
    committed_ms: int | None = None  # newest exchange time committed
    last_commit: datetime | None = None
    # Exchange time seen whole (ms): the open stretch since the last hole, and stretches a hole closed.
    stretch_from_ms: int | None = None
    stretches: list[tuple[int, int]] = field(default_factory=list)
    span_ms: int = 0  # what a row's time covers past itself: a candle's length, 0 for trades
    rows_total: int = 0
    reconnects: int = 0
    gap_id: int | None = None
    gap_start_ms: int | None = None
    resume_from: datetime | None = None  # a previous run's last committed time (restart hole)
    window: deque = field(default_factory=deque)  # (commit epoch, rows, lags ms array)
    started_at: datetime | None = None

    @property
    def dataset(self) -> str:
        return DATASET[self.name]

    def take(self) -> tuple[list[dict[str, Any]], list[float], list[tuple[int, int]]]:
        """The pending rows with their arrival times, and the stretches of exchange time they complete.

        Taken together with the rows (not at commit, when the watcher may already have resumed after a
        hole), so a stretch is claimed exactly when the rows it holds are written.
        """
        rows, arrivals, stretches = self.pending, self.arrivals, self.stretches
        self.pending, self.arrivals, self.stretches = [], [], []
        if rows and self.stretch_from_ms is not None and self.last_exchange_ms is not None:
            # The newest millisecond may still get trades: exclusive (a candle covers its whole length).
            end = self.last_exchange_ms + self.span_ms
            if end > self.stretch_from_ms:
                stretches.append((self.stretch_from_ms, end))
                self.stretch_from_ms = end
        return rows, arrivals, stretches

    def interrupted(self) -> None:
        """The stream broke: the open stretch ends at the newest time seen; the next one starts anew."""
        if self.stretch_from_ms is not None and self.last_exchange_ms is not None:
            end = self.last_exchange_ms + self.span_ms
            if end > self.stretch_from_ms:
                self.stretches.append((self.stretch_from_ms, end))
        self.stretch_from_ms = None

    def minute(self, now: float) -> tuple[int, np.ndarray]:
        while self.window and self.window[0][0] < now - WINDOW.total_seconds():
            self.window.popleft()
        lags = np.concatenate([w[2] for w in self.window]) if self.window else np.array([])
        return sum(w[1] for w in self.window), lags


@dataclass
class FlushStats:
    """What the service wrote, for the per-minute log line and the benchmark."""

    rows: int = 0
    flushes: int = 0
    quarantined: int = 0
    duplicates: int = 0
    latencies_ms: list[np.ndarray] = field(default_factory=list)  # arrival -> commit, per flush


class CaptureService:
    """Live capture of one exchange (see the module docstring). `run(stop)` returns once `stop` is set."""

    def __init__(
        self,
        config: StreamConfig,
        engine: sa.Engine,
        *,
        api_base_url: str | None = None,
        ws_base_url: str | None = None,
        exchange: Any = None,
        rest: Any = None,
        rest_backoff: Backoff | None = None,
        writer: str = "process",
    ) -> None:
        """`rest_backoff`: retries of one back-fill request (default: the REST client's, up to ~1 minute);
        `writer`: where micro-batches are written, 'process' (a child process, so a flush does not take
        the GIL from receiving) or 'thread' (`resources.stream.writer`)."""
        self.config = config
        self.writer = make_writer(writer, engine)
        self.rest_backoff = rest_backoff or Backoff()
        self.engine = engine
        self.exchange = exchange or build_stream_exchange(
            config, api_base_url=api_base_url, ws_base_url=ws_base_url
        )
        self.rest = rest or build_exchange(config.exchange, api_base_url=api_base_url)
        candle_ms = int(interval_to_timedelta(config.candle_interval).total_seconds() * 1000)
        self.channels = {
            (symbol, name): Channel(symbol, name, span_ms=candle_ms if name == "ohlcv" else 0)
            for symbol in config.symbols
            for name in config.channels
        }
        self.stats = FlushStats()
        self._seen: dict[str, OrderedDict[str, None]] = {s: OrderedDict() for s in config.symbols}
        self._candles: dict[str, dict[int, list]] = {s: {} for s in config.symbols}
        self._book_at: dict[str, float] = {}
        self._full = asyncio.Event()
        self._backfills: set[asyncio.Task] = set()
        self._write_lock = asyncio.Lock()
        self._covered: list = []  # coverage entries committed rows earned, not yet in the ledger
        self._ledger_at = 0.0
        self.backoff = Backoff(
            base_delay=config.reconnect_base_s, max_delay=config.reconnect_max_s, max_retries=2**31
        )

    # ---------------------------------------------------------------------------------------------- run

    async def run(self, stop: asyncio.Event) -> FlushStats:
        """Capture until `stop` is set, then flush what waits and mark the streams stopped."""
        started = clock.now()
        await self.writer.start()  # before subscribing: the first flush does not wait for it
        previous = await asyncio.to_thread(last_seen, self.engine, self.config.name)
        for key, channel in self.channels.items():
            channel.started_at = started
            if channel.name in BACKFILLED:
                channel.resume_from = previous.get(key)
        watchers = [
            asyncio.create_task(self._watch(c), name=f"watch {c.symbol} {c.name}")
            for c in self.channels.values()
        ]
        flusher = asyncio.create_task(self._flush_loop(stop), name="flush")
        logger = asyncio.create_task(self._log_loop(stop), name="log")
        try:
            await stop.wait()
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            self._full.set()  # wakes the flush loop now, not at its next flush_ms
            await flusher
            logger.cancel()
            await asyncio.gather(logger, *self._backfills, return_exceptions=True)
            for channel in self.channels.values():
                channel.status = "stopped"
            try:
                await self.flush(final=True)
            finally:
                await self.writer.close()
                with contextlib.suppress(Exception):
                    await self.exchange.close()
        return self.stats

    # ------------------------------------------------------------------------------------------ watching

    async def _watch(self, channel: Channel) -> None:
        """Receive one channel forever; a transient failure is a hole, a back-off and a resubscribe."""
        attempt = 0
        while True:
            try:
                items = await self._receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified right below
                if not self._reconnectable(exc):
                    log.error("%s %s %s: stopped: %s", self.config.name, channel.symbol, channel.name, exc)
                    channel.status = "stopped"
                    return
                await self._lost(channel, exc)
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            attempt = 0
            first_ms = _earliest(channel.name, items)
            if channel.name == "trades" and len(items) >= self._trades_cache() and first_ms is not None:
                await self._lost(
                    channel, OverflowError(f"{len(items)} trades between two watches"), "overflow"
                )
            self._accept(channel, items, clock.now())
            if first_ms is not None and (channel.gap_id is not None or channel.resume_from is not None):
                self._resumed(channel, first_ms)

    @staticmethod
    def _reconnectable(exc: BaseException) -> bool:
        """Transient errors (the connection dropped, timed out) and a book out of sequence: resubscribe."""
        return isinstance(exc, (ccxt.NetworkError, ccxt.ChecksumError)) or classify(exc).transient

    async def _receive(self, channel: Channel) -> Any:
        ex, symbol = self.exchange, channel.symbol
        if channel.name == "trades":
            return await ex.watch_trades(symbol, params=dict(self.config.trades_params))
        if channel.name == "ohlcv":
            return await ex.watch_ohlcv(symbol, self.config.candle_interval)
        if channel.name == "orderbook":
            return await ex.watch_order_book(symbol)
        return await ex.watch_ticker(symbol, params=dict(self.config.ticker_params))

    def _accept(self, channel: Channel, items: Any, arrival: datetime) -> None:
        """Queue the rows of what ccxt.pro returned."""
        rows = getattr(self, f"_rows_{channel.name}")(channel, items, arrival)
        if not rows:
            return
        stamp = arrival.timestamp()
        channel.pending.extend(rows)
        channel.arrivals.extend([stamp] * len(rows))
        channel.last_arrival = arrival
        times = [r["time"] for r in rows if isinstance(r.get("time"), (int, float))]
        if times:
            channel.last_exchange_ms = max(channel.last_exchange_ms or 0, max(times))
            if channel.stretch_from_ms is None:
                channel.stretch_from_ms = min(times)
        if sum(len(c.pending) for c in self.channels.values()) >= self.config.flush_rows:
            self._full.set()

    def _rows_trades(self, channel: Channel, trades: list, arrival: datetime) -> list[dict]:
        seen = self._seen[channel.symbol]
        rows = []
        for trade in trades:
            row = trade_row(trade, self.config.name, channel.symbol, arrival)
            if row["trade_id"] in seen:
                self.stats.duplicates += 1
                continue
            seen[row["trade_id"]] = None
            if len(seen) > SEEN_TRADE_IDS:
                seen.popitem(last=False)
            rows.append(row)
        return rows

    def _rows_ohlcv(self, channel: Channel, candles: list, arrival: datetime) -> list[dict]:
        """Closed candles only: a candle is closed once a later one of the series has been seen."""
        pending = self._candles[channel.symbol]
        for candle in candles:
            pending[int(candle[0])] = list(candle)
        newest = max(pending) if pending else None
        closed = sorted(t for t in pending if newest is not None and t < newest)
        source = f"stream:{self.config.exchange.driver}"
        return [
            candle_row(pending.pop(t), self.config.name, channel.symbol, self.config.candle_interval, source)
            for t in closed
        ]

    def _rows_orderbook(self, channel: Channel, book: Any, arrival: datetime) -> list[dict]:
        """A top-N snapshot of the live book at most every `book_every_ms` (and only when it moved)."""
        now = time.monotonic()
        if now - self._book_at.get(channel.symbol, -1e9) < self.config.book_every_ms / 1000:
            return []
        row = book_row(book, self.config.name, channel.symbol, self.config.book_depth)
        if row is None or row["time"] == channel.last_exchange_ms:
            return []
        self._book_at[channel.symbol] = now
        return [row]

    def _rows_ticker(self, channel: Channel, ticker: Any, arrival: datetime) -> list[dict]:
        source = f"stream:{self.config.exchange.driver}"
        row = ticker_metrics_row(ticker, self.config.name, channel.symbol, self.config.ticker_every, source)
        return [] if row is None else [row]

    # ---------------------------------------------------------------------------------------------- holes

    def _trades_cache(self) -> int:
        return int(self.exchange.options.get("tradesLimit", 1000))

    async def _lost(self, channel: Channel, exc: BaseException, reason: str = "disconnect") -> None:
        """The stream of `channel` broke: one hole (and event) per outage, from the last time it saw."""
        channel.status = "reconnecting"
        if channel.gap_id is not None:
            return
        channel.reconnects += reason == "disconnect"
        channel.interrupted()
        start_ms = channel.last_exchange_ms
        start = _ms_time(start_ms) if start_ms is not None else channel.resume_from or clock.now()
        channel.resume_from = None
        channel.gap_start_ms = int(start.timestamp() * 1000)
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
        log.warning(
            "%s %s %s: %s (%s), a hole from %s",
            self.config.name,
            channel.symbol,
            channel.name,
            reason,
            error,
            start,
        )
        channel.gap_id = await asyncio.to_thread(
            open_gap, self.engine, self.config.name, channel.symbol, channel.name, reason, start, error
        )

    def _resumed(self, channel: Channel, first_ms: int) -> None:
        """Data flows again: the hole ends at the first exchange time seen; it is recorded and back-filled in
        the background, because ccxt.pro signals a message only to a watch that is waiting for it."""
        if channel.gap_id is not None:
            gap_id, reason, start_ms = channel.gap_id, "disconnect", channel.gap_start_ms
        else:  # a restart: the hole runs from the previous run's last commit
            start, channel.resume_from = channel.resume_from, None
            if start is None or int(start.timestamp() * 1000) >= first_ms:
                return
            gap_id, reason, start_ms = None, "restart", int(start.timestamp() * 1000)
        channel.gap_id = channel.gap_start_ms = None
        channel.status = "running"
        task = asyncio.create_task(self._repair(channel, gap_id, reason, start_ms, first_ms))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)

    async def _repair(
        self, channel: Channel, gap_id: int | None, reason: str, start_ms: int, end_ms: int
    ) -> None:
        if gap_id is None:
            gap_id = await asyncio.to_thread(
                open_gap,
                self.engine,
                self.config.name,
                channel.symbol,
                channel.name,
                reason,
                _ms_time(start_ms),
                reason,
            )
        await self._backfill(channel, gap_id, start_ms, end_ms)

    async def _backfill(self, channel: Channel, gap_id: int, start_ms: int, end_ms: int) -> None:
        start, end = _ms_time(start_ms), _ms_time(end_ms)
        if channel.name not in BACKFILLED:
            await asyncio.to_thread(close_gap, self.engine, gap_id, end, "unfillable")
            return
        try:
            rows, answered = await asyncio.to_thread(self._backfill_rest, channel, start, end)
        except Exception as exc:  # noqa: BLE001 - the hole stays marked with the reason
            log.warning("%s %s %s: back-fill failed: %s", self.config.name, channel.symbol, channel.name, exc)
            detail = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            await asyncio.to_thread(close_gap, self.engine, gap_id, end, "unfilled", 0, detail)
            return
        status = "filled" if answered >= end else "unfilled"
        detail = {"answered_until": answered.isoformat()}
        await asyncio.to_thread(close_gap, self.engine, gap_id, end, status, rows, detail)

    def _backfill_rest(self, channel: Channel, start: datetime, end: datetime) -> tuple[int, datetime]:
        """Pull the hole over REST into the warehouse (worker thread); rows stored, answered-until time."""
        config, name, symbol = self.config, self.config.name, channel.symbol
        source = f"ccxt:{config.exchange.driver}"
        if channel.name == "trades":
            # The hole's last millisecond may hold more trades than the first one streamed again.
            pulled = fetch_trades_range(
                self.rest,
                symbol,
                start,
                end + timedelta(milliseconds=1),
                limit=config.exchange.trades_limit,
                backoff=self.rest_backoff,
            )
            frame, dataset = trades_frame(pulled, name, symbol), "market_trades"
            key = SeriesKey("market_trades", name, symbol)
        else:
            interval = config.candle_interval
            pulled = fetch_ohlcv_range(
                self.rest,
                symbol,
                interval,
                floor_time(start, interval),
                end,
                limit=config.exchange.ohlcv_limit,
                backoff=self.rest_backoff,
            )
            frame, dataset = ohlcv_frame(pulled, name, symbol, interval, source), "ohlcv"
            if "price" not in frame:  # traded prices, as streamed
                frame.insert(3, "price", "trade")
            key = SeriesKey("ohlcv", name, symbol, interval)
        result = load_frame(self.engine, dataset, frame, source=source, run_id=f"stream:{name}:backfill")
        answered = pulled.answered_until.to_pydatetime()
        if answered > start:
            with self.engine.begin() as conn:
                record_stream_coverage(conn, key, start, answered, result.stored, config.exchange.driver)
        return result.stored + result.unchanged, answered

    # --------------------------------------------------------------------------------------------- flush

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        """Flush every `flush_ms` (counted from the previous flush's start, so a slow flush is followed at
        once by the next), or as soon as `flush_rows` rows wait."""
        started = time.monotonic()
        while not stop.is_set():
            due = started + self.config.flush_ms / 1000 - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=max(0.0, due))
            started = time.monotonic()
            self._full.clear()
            self._sweep()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - a failed flush is logged; the rows' hole is back-filled later
                log.exception("%s: flush failed", self.config.name)

    def _sweep(self) -> None:
        """Trades ccxt.pro holds but has not handed out: a message that arrives while no watch waits is only
        signalled with the next one, so the tail of a burst would wait for the next trade. The newest
        entries of ccxt's trade cache not seen yet are taken at every flush tick."""
        for channel in self.channels.values():
            cache = (
                (getattr(self.exchange, "trades", None) or {}).get(channel.symbol)
                if channel.name == "trades"
                else None
            )
            if not cache or channel.status != "running":
                continue
            seen, fresh = self._seen[channel.symbol], []
            for trade in reversed(cache):
                if _trade_key(trade) in seen:
                    break
                fresh.append(trade)
            if fresh:
                self._accept(channel, fresh[::-1], clock.now())

    async def flush(self, final: bool = False) -> None:
        """Write every pending row (one `load_frame` per dataset, in the writer); then, at most every second
        and when `final`, the heartbeats and the coverage the committed rows earned."""
        async with self._write_lock:
            taken = {key: channel.take() for key, channel in self.channels.items()}
            by_dataset: dict[str, list[dict]] = {}
            for (_symbol, name), (rows, _, _) in taken.items():
                by_dataset.setdefault(DATASET[name], []).extend(rows)
            if any(by_dataset.values()):
                quarantined = await self.writer.write(
                    by_dataset,
                    source=f"stream:{self.config.exchange.driver}",
                    run_id=f"stream:{self.config.name}",
                    now=clock.now(),
                )
                self.stats.quarantined += sum(quarantined.values())
            committed = clock.now()
            for key, (rows, arrivals, stretches) in taken.items():
                channel = self.channels[key]
                if rows:
                    self._committed(channel, rows, arrivals, committed)
                self._covered.extend(self._coverage(channel, stretches, len(rows)))
            if final or time.monotonic() - self._ledger_at >= LEDGER_EVERY_S:
                await asyncio.to_thread(self._write_ledger)

    def _write_ledger(self) -> None:
        """Heartbeats of every stream and the coverage earned since the last time, in one transaction."""
        covered, self._covered = self._covered, []
        with self.engine.begin() as conn:
            write_heartbeats(conn, [self._heartbeat(channel) for channel in self.channels.values()])
            for key, start, end, rows in covered:
                record_stream_coverage(conn, key, start, end, rows, self.config.exchange.driver)
        self._ledger_at = time.monotonic()

    def _committed(
        self, channel: Channel, rows: list[dict], arrivals: list[float], committed: datetime
    ) -> None:
        """Book-keeping of rows just committed: counts, arrival->commit latency, exchange->commit lag."""
        commit = committed.timestamp()
        times = np.array([r["time"] for r in rows if isinstance(r.get("time"), (int, float))], dtype=float)
        channel.window.append((commit, len(rows), commit * 1000 - times))
        channel.rows_total += len(rows)
        channel.last_commit = committed
        if len(times):
            channel.committed_ms = max(channel.committed_ms or 0, int(times.max()))
        self.stats.rows += len(rows)
        self.stats.flushes += 1
        self.stats.latencies_ms.append((commit - np.asarray(arrivals)) * 1000)

    def _coverage(self, channel: Channel, stretches: list[tuple[int, int]], rows: int) -> list:
        """Coverage ledger entries of the stretches a flush completed (trades and candles only)."""
        if channel.name == "trades":
            key = SeriesKey("market_trades", self.config.name, channel.symbol)
        elif channel.name == "ohlcv":
            key = SeriesKey("ohlcv", self.config.name, channel.symbol, self.config.candle_interval)
        else:
            return []
        return [(key, _ms_time(lo), _ms_time(hi), rows) for lo, hi in stretches]

    def _heartbeat(self, channel: Channel) -> Heartbeat:
        rows, lags = channel.minute(clock.now().timestamp())
        p50, p99 = percentiles(lags)
        return Heartbeat(
            exchange=self.config.name,
            symbol=channel.symbol,
            channel=channel.name,
            status=channel.status,
            last_exchange_time=_ms_time(channel.committed_ms),
            last_arrival_time=channel.last_arrival,
            last_commit_time=channel.last_commit,
            rows_total=channel.rows_total,
            rows_last_minute=rows,
            lag_p50_ms=p50,
            lag_p99_ms=p99,
            reconnects=channel.reconnects,
            started_at=channel.started_at,
        )

    # ----------------------------------------------------------------------------------------------- log

    async def _log_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.log_every_s)
            log.info(self.summary_line())

    def summary_line(self) -> str:
        """One line for the exchange: rows and exchange->commit lag p50/p99 over the last minute, reconnects."""
        now = time.time()
        minutes = [c.minute(now) for c in self.channels.values()]
        rows = sum(m[0] for m in minutes)
        lags = np.concatenate([m[1] for m in minutes]) if minutes else np.array([])
        p50, p99 = percentiles(lags)
        shown = "n/a" if p50 is None else f"{p50:.0f}/{p99:.0f} ms"
        reconnects = sum(c.reconnects for c in self.channels.values())
        holes = sum(1 for c in self.channels.values() if c.gap_id is not None)
        return (
            f"stream {self.config.name}: {rows} rows/min, lag p50/p99 {shown}, reconnects {reconnects}, "
            f"open holes {holes}"
        )
