"""Files of the field's archive layouts, written by the tests to each tool's published format (no third-party
data copied): freqtrade's Feather candles and trades, Binance Vision's zips of 12-column klines, trades,
aggTrades and fundingRate CSVs (with or without a header, times in ms or µs) with their `.CHECKSUM`, and
Tardis' gzipped CSVs."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
T0_MS = int(T0.timestamp() * 1000)
NOW = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()  # the loads' clock: every test file is past
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)


def write(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def zipped(name: str, data: bytes) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return sink.getvalue()


def with_checksum(root: Path, relative: str, data: bytes, *, digest: str | None = None) -> Path:
    """The file and its Binance Vision sidecar, `sha256sum` format; `digest` overrides the right one."""
    path = write(root, relative, data)
    digest = digest or hashlib.sha256(data).hexdigest()
    write(root, relative + ".CHECKSUM", f"{digest}  {path.name}\n".encode())
    return path


def candles(
    n: int = 20, *, step: str = "1min", start: pd.Timestamp = T0, base: float = 100.0
) -> pd.DataFrame:
    """freqtrade's candle frame: `date` datetime64[ns, UTC], then open/high/low/close/volume float64."""
    date = pd.date_range(start, periods=n, freq=step).astype("datetime64[ns, UTC]")
    opens = base + np.arange(n, dtype="float64")
    return pd.DataFrame(
        {"date": date, "open": opens, "high": opens + 2, "low": opens - 1, "close": opens + 1,
         "volume": 10.0 + np.arange(n)}
    )  # fmt: skip


def feather_bytes(frame: pd.DataFrame) -> bytes:
    """As freqtrade's FeatherDataHandler writes: `to_feather(compression='lz4', compression_level=9)`."""
    sink = io.BytesIO()
    frame.reset_index(drop=True).to_feather(sink, compression="lz4", compression_level=9)
    return sink.getvalue()


def freqtrade_trades(n: int = 5, *, start_ms: int = T0_MS) -> pd.DataFrame:
    """freqtrade's trades frame: DEFAULT_TRADES_COLUMNS = timestamp, id, type, side, price, amount, cost."""
    price = 0.0014 + np.arange(n) * 1e-5
    amount = 20.0 + np.arange(n)
    return pd.DataFrame(
        {"timestamp": start_ms + np.arange(n) * 1_000, "id": [str(1000 + i) for i in range(n)],
         "type": [None] * n, "side": ["sell" if i % 2 else "buy" for i in range(n)], "price": price,
         "amount": amount, "cost": price * amount}
    )  # fmt: skip


def kline_csv(frame: pd.DataFrame, *, header: bool, unit: str = "ms", interval_ms: int = 60_000) -> bytes:
    """Binance Vision's 12-column klines; times in ms, or µs (spot files from 2025)."""
    scale = 1_000 if unit == "us" else 1
    rows = [KLINE_HEADER] if header else []
    times = frame["date"].astype("int64") // 10**6
    for t, o, v in zip(times, frame["open"], frame["volume"], strict=True):
        close_time = (t + interval_ms) * scale - 1
        rows.append(f"{t * scale},{o},{o + 2},{o - 1},{o + 1},{v},{close_time},1050.0,7,5.0,500.0,0")
    return ("\n".join(rows) + "\n").encode()


def binance_trades_csv(n: int = 6, *, start_ms: int = T0_MS, unit: str = "ms", header: bool = False) -> bytes:
    """Binance Vision `trades`: id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch (spot)."""
    scale = 1_000 if unit == "us" else 1
    rows = ["id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"] if header else []
    for i in range(n):
        price, qty = 42_000.0 + i, 0.01
        maker = "True" if i % 2 else "False"
        rows.append(f"{500 + i},{price},{qty},{price * qty},{(start_ms + i * 100) * scale},{maker},True")
    return ("\n".join(rows) + "\n").encode()


def agg_trades_csv(n: int = 6, *, start_ms: int = T0_MS, header: bool = True) -> bytes:
    """Binance Vision `aggTrades` of futures/um: agg_trade_id, price, quantity, first/last trade id,
    transact_time, is_buyer_maker (header in the futures files, none in spot: a, p, q, f, l, T, m, M)."""
    rows = (
        ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"]
        if header
        else []
    )
    for i in range(n):
        rows.append(
            f"{9_000 + i},{42_010.0 + i},0.5,{i * 3},{i * 3 + 2},{start_ms + i * 250},{str(i % 2 == 0).lower()}"
        )
    return ("\n".join(rows) + "\n").encode()


def funding_csv(rates: list[float], *, start_ms: int = T0_MS, hours: int = 8) -> bytes:
    """Binance Vision `fundingRate`: calc_time, funding_interval_hours, last_funding_rate."""
    rows = ["calc_time,funding_interval_hours,last_funding_rate"]
    for i, rate in enumerate(rates):
        rows.append(f"{start_ms + i * hours * 3_600_000},{hours},{rate}")
    return ("\n".join(rows) + "\n").encode()


def freqtrade_funding(rates: list[float], *, start: pd.Timestamp = T0, hours: int = 8) -> pd.DataFrame:
    """freqtrade's `-funding_rate` frame: a candle frame whose `open` is the rate."""
    date = pd.date_range(start, periods=len(rates), freq=f"{hours}h").astype("datetime64[ns, UTC]")
    rate = np.asarray(rates, dtype="float64")
    zeros = np.zeros(len(rates))
    return pd.DataFrame(
        {"date": date, "open": rate, "high": rate, "low": rate, "close": rate, "volume": zeros}
    )


def tardis_trades_csv_gz(exchange: str, symbol: str, n: int = 4, *, start_us: int = T0_MS * 1_000) -> bytes:
    """Tardis `trades`: exchange, symbol, timestamp, local_timestamp (µs), id, side, price, amount."""
    rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    for i in range(n):
        t = start_us + i * 1_000
        rows.append(
            f"{exchange},{symbol},{t},{t + 700},{77_000 + i},{'buy' if i % 2 else 'sell'},{11_000.5 + i},0.25"
        )
    return gzip.compress(("\n".join(rows) + "\n").encode())


def tardis_ticker_csv_gz(exchange: str, symbol: str, *, start_us: int = T0_MS * 1_000) -> bytes:
    """Tardis `derivative_ticker`: updates of the rate to be paid at `funding_timestamp` (µs)."""
    rows = [
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
        "open_interest,last_price,index_price,mark_price"
    ]
    hour_us = 3_600_000_000
    for funding, rates in ((8, (0.0001, 0.00012)), (16, (0.0002, 0.00025))):
        for j, rate in enumerate(rates):
            t = start_us + (funding - 8) * hour_us + (j + 1) * hour_us
            rows.append(f"{exchange},{symbol},{t},{t + 5},{start_us + funding * hour_us},{rate},,1000,{42_000 + j},"
                        f"{41_990 + j},{42_001 + j}")  # fmt: skip
    return gzip.compress(("\n".join(rows) + "\n").encode())


def rows(engine: sa.Engine, query: str) -> list[tuple]:
    """A query's rows as tuples."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query))]
