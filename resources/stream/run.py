"""Running the capture of several exchanges in one process until SIGTERM/SIGINT, then flushing.

`serve` is what `market-warehouse stream` and a systemd unit or container run; `run_services` is the same
without signal handling, for tests and embedding (a trading bot can run it in its own event loop).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import sqlalchemy as sa

from market_warehouse.resources.stream.config import StreamConfig
from market_warehouse.resources.stream.service import CaptureService, FlushStats

log = logging.getLogger(__name__)


async def run_services(
    configs: Sequence[StreamConfig], engine: sa.Engine, stop: asyncio.Event
) -> list[FlushStats]:
    """One `CaptureService` per exchange, all until `stop` is set; each flushes what it holds on the way out."""
    services = [CaptureService(config, engine) for config in configs]
    return list(await asyncio.gather(*(service.run(stop) for service in services)))


def serve(configs: Sequence[StreamConfig], engine: sa.Engine) -> list[FlushStats]:
    """Run until SIGTERM or SIGINT; a signal sets the stop event, so every pending row is written first."""

    async def main() -> list[FlushStats]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        names = ", ".join(f"{c.name} ({len(c.symbols)} symbols: {', '.join(c.channels)})" for c in configs)
        log.info("stream: capturing %s", names)
        return await run_services(configs, engine, stop)

    return asyncio.run(main())
