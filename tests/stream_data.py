"""A local Binance spot websocket for the live-capture tests and benchmark: recorded frames, real wire format.

The frames are made from the recorded REST responses of `tests/fixtures/exchanges/binance` (the same
trades and candles the REST replay serves), in the format of Binance's market streams:

- `<symbol>@aggTrade`: {"e":"aggTrade","E":..,"s":"BTCUSDT","a":..,"p":"..","q":"..","f":..,"l":..,"T":..,
  "m":true,"M":true}
- `<symbol>@kline_<interval>`: {"e":"kline","E":..,"s":"BTCUSDT","k":{"t":..,"T":..,"i":"1h","o":..,..,"x":..}}
- `<symbol>@depth@100ms`: {"e":"depthUpdate","E":..,"s":"BTCUSDT","U":..,"u":..,"b":[..],"a":[..]}
- `<symbol>@ticker`: {"e":"24hrTicker","E":..,"s":"BTCUSDT","c":"<last>","b":..,"a":..,"h":..,"l":..,"C":..,..}

ccxt.pro subscribes with `{"method":"SUBSCRIBE","params":[stream],"id":n}`; the server answers
`{"result":null,"id":n}` and plays that stream's next *session*: a list of frames, then either a dropped
connection (`drop=True`) or silence until the test ends. So a scenario is, per stream, what each
successive connection receives.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

FIXTURES = Path(__file__).parent / "fixtures" / "exchanges" / "binance"
TRADES_STREAM = "btcusdt@aggTrade"
KLINES_STREAM = "btcusdt@kline_1h"
DEPTH_STREAM = "btcusdt@depth@100ms"
TICKER_STREAM = "btcusdt@ticker"


def recorded_agg_trades() -> list[dict]:
    return json.loads((FIXTURES / "aggTrades_BTCUSDT.json").read_text())


def recorded_klines() -> list[list]:
    return json.loads((FIXTURES / "klines_BTCUSDT_1h.json").read_text())


def recorded_ticker() -> dict:
    return json.loads((FIXTURES / "ticker_24hr_BTCUSDT.json").read_text())


def ticker_frame(rest: dict, close_ms: int, last: str, symbol: str = "BTCUSDT") -> str:
    """The REST 24h ticker as the websocket `24hrTicker` event closing at `close_ms` with last price `last`."""
    r = rest
    event = {
        "e": "24hrTicker", "E": close_ms + 5, "s": symbol, "p": r["priceChange"], "P": r["priceChangePercent"],
        "w": r["weightedAvgPrice"], "x": r["prevClosePrice"], "c": last, "Q": r["lastQty"], "b": r["bidPrice"],
        "B": r["bidQty"], "a": r["askPrice"], "A": r["askQty"], "o": r["openPrice"], "h": r["highPrice"],
        "l": r["lowPrice"], "v": r["volume"], "q": r["quoteVolume"], "O": close_ms - 86_400_000 + 1,
        "C": close_ms, "F": r["firstId"], "L": r["lastId"], "n": r["count"],
    }  # fmt: skip
    return json.dumps(event)


def recorded_depth() -> dict:
    return json.loads((FIXTURES / "depth_BTCUSDT.json").read_text())


def trade_frame(trade: dict, symbol: str = "BTCUSDT") -> str:
    """A REST aggTrade as the websocket `aggTrade` event (event time a few ms after the trade)."""
    return json.dumps({"e": "aggTrade", "E": trade["T"] + 3, "s": symbol, **trade})


def kline_frame(kline: list, closed: bool = True, symbol: str = "BTCUSDT") -> str:
    """A REST kline row as the websocket `kline` event; `closed` is the final update of the candle."""
    t, o, h, low, c, v, close_time, q, n, taker_v, taker_q, _ = kline
    k = {
        "t": t, "T": close_time, "s": symbol, "i": "1h", "f": 0, "L": n, "o": o, "c": c, "h": h, "l": low,
        "v": v, "n": n, "x": closed, "q": q, "V": taker_v, "Q": taker_q, "B": "0",
    }  # fmt: skip
    return json.dumps({"e": "kline", "E": close_time + 1 if closed else t + 1000, "s": symbol, "k": k})


def depth_frame(first: int, last: int, event_ms: int, bids: list, asks: list, symbol: str = "BTCUSDT") -> str:
    return json.dumps(
        {"e": "depthUpdate", "E": event_ms, "s": symbol, "U": first, "u": last, "b": bids, "a": asks}
    )


@dataclass
class Session:
    """What one connection of one stream receives: `frames`, then a drop or silence."""

    frames: list[str]
    drop: bool = False
    pause_s: float = 0.0  # between frames (0: as fast as the socket takes them)
    pauses: dict[int, float] = field(default_factory=dict)  # extra pause after frame i


@dataclass
class BinanceWsReplay:
    """The server: `sessions[stream]` are played to successive subscriptions of that stream."""

    sessions: dict[str, list[Session]]
    subscriptions: defaultdict = field(default_factory=lambda: defaultdict(int))
    port: int = 0
    _server: object = None

    @property
    def base_url(self) -> str:
        # ccxt.pro's binance tells spot from futures connections by '/stream' in the URL (the host of
        # wss://stream.binance.com): the local URL keeps it in the path.
        return f"ws://127.0.0.1:{self.port}/stream"

    async def __aenter__(self) -> BinanceWsReplay:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_queue=None, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        players = []
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("method") != "SUBSCRIBE":
                    continue
                await ws.send(json.dumps({"result": None, "id": message["id"]}))
                for stream in message["params"]:
                    index = self.subscriptions[stream]
                    self.subscriptions[stream] += 1
                    plan = self.sessions.get(stream, [])
                    if index < len(plan):
                        players.append(asyncio.create_task(self._play(ws, plan[index])))
        finally:
            for task in players:
                task.cancel()

    @staticmethod
    async def _play(ws: ServerConnection, session: Session) -> None:
        await asyncio.sleep(0.05)  # after the subscription's answer has been handled
        for index, frame in enumerate(session.frames):
            await ws.send(frame)
            if session.pause_s or index in session.pauses:
                await asyncio.sleep(session.pause_s + session.pauses.get(index, 0.0))
        if session.drop:
            await asyncio.sleep(0.05)
            ws.transport.abort()  # a dropped connection, not a polite close
