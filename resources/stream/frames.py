"""ccxt.pro structures -> rows of the warehouse tables, each with its exchange time and arrival time.

Rows are plain dicts while they wait in a micro-batch (appending a dict costs less than anything
vectorised for one message); a batch becomes a frame once, when it is flushed. The shapes are the REST
path's (`resources.exchanges.client`): the same trade id, the same book and ticker rows, so a row streamed and
the same row back-filled over REST are one key in the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from market_warehouse.resources.exchanges.calendars import floor_time
from market_warehouse.resources.exchanges.client import _trade_key, order_book_row, ticker_row
from market_warehouse.resources.quality.split import table_of

# Dataset of each channel (the table its rows go to).
DATASET = {
    "trades": "market_trades",
    "ohlcv": "ohlcv",
    "orderbook": "orderbook_snapshots",
    "ticker": "market_metrics",
}
_MS_TIME_COLUMNS = ("time",)


def trade_row(trade: Mapping[str, Any], exchange: str, symbol: str, arrival: datetime) -> dict[str, Any]:
    """One `market_trades` row; `time` stays epoch ms until the batch is framed."""
    side = trade.get("side")
    return {
        "exchange": exchange,
        "symbol": symbol,
        "trade_id": _trade_key(trade),
        "time": trade.get("timestamp"),
        "price": trade.get("price"),
        "amount": trade.get("amount"),
        "cost": trade.get("cost"),
        "side": side,
        # The buyer is the maker exactly when the aggressor (taker) sold.
        "is_buyer_maker": {"sell": True, "buy": False}.get(side),
        "received_at": arrival,
    }


def candle_row(candle: list, exchange: str, symbol: str, interval: str, source: str) -> dict[str, Any]:
    """One `ohlcv` row of a closed ccxt candle `[open time ms, o, h, l, c, v]`."""
    time_ms, open_, high, low, close, volume = (list(candle) + [None] * 6)[:6]
    return {
        "exchange": exchange,
        "symbol": symbol,
        "interval": interval,
        "price": "trade",  # the kline stream: traded prices (mark/index candles are not streamed)
        "time": time_ms,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "source": source,
    }


def book_row(book: Mapping[str, Any], exchange: str, symbol: str, depth: int) -> dict[str, Any] | None:
    """The top-`depth` snapshot of ccxt.pro's live book at its exchange time; None before the first update."""
    stamp = book.get("timestamp")
    if not stamp:
        return None
    return order_book_row(book, exchange, symbol, depth, int(stamp))


def ticker_metrics_row(
    ticker: Mapping[str, Any], exchange: str, symbol: str, every: str, source: str
) -> dict[str, Any] | None:
    """A streamed ticker as a `market_metrics` row of interval `every`; None without an exchange time.

    As on the REST path (`ingest_tickers`), `market_metrics` rows sit on their interval's grid: the row is
    stored at the start of its slot with the exact exchange time in `metadata.observed_at`, and a later
    ticker of the same slot replaces it.
    """
    stamp = ticker.get("timestamp")
    if not stamp:
        return None
    observed = pd.Timestamp(int(stamp), unit="ms", tz="UTC")
    row = ticker_row(ticker, exchange, symbol, int(floor_time(observed, every).value // 1_000_000))
    row["interval"] = every
    row["metadata"] = {"observed_at": observed.isoformat(), "window": "24h", "source": source}
    return row


def rows_frame(dataset: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A micro-batch as a frame: epoch-ms times become UTC timestamps; missing or unreadable values stay
    missing, for validation to quarantine with its reason (not to fail the whole batch here)."""
    frame = pd.DataFrame(list(rows))
    for column in _MS_TIME_COLUMNS:
        if column in frame:
            ms = pd.to_numeric(frame[column], errors="coerce")
            frame[column] = pd.to_datetime(ms, unit="ms", utc=True)
    # Rows of one key in one batch (ticker updates of one slot, a repeated snapshot): the newest wins, as a
    # later batch's row would replace it; validation would otherwise quarantine the earlier ones.
    key = [c.name for c in table_of(dataset).primary_key.columns if c.name in frame]
    if key and len(frame):
        frame = frame.drop_duplicates(subset=key, keep="last").reset_index(drop=True)
    if "received_at" in frame:
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
    if dataset == "ohlcv" and len(frame):
        for column in ("open", "high", "low", "close", "volume"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame
