"""Where the capture's micro-batches are written: a process of its own (the default) or a worker thread.

Why a process: receiving is CPU-bound Python (websocket frames, JSON, ccxt.pro's parsing) and so is the
Python side of a flush (framing the batch, `load_frame`'s validation and upsert encoding). In one process
the two take turns on the GIL: every flush stalled receiving, and on a busy machine the capture fell behind
a bare ccxt.pro consumer (py-spy of `benchmarks/stream.py`: the flush thread held the GIL for ~45 ms of CPU
per 1,250-trade batch, ~1.5x the bare consumer's CPU per trade in the one process). The writer process
frames and loads one micro-batch at a time, in the order handed in, through the same `load_frame` as
everything else (validation, quarantine, idempotent upsert); the service keeps all book-keeping (counts,
latencies, heartbeats, coverage), which it updates when the writer answers that the batch is committed.

Not lost, not doubled: one batch is in flight at a time. When the writer process dies (killed, out of
memory) the batch is written again by a new writer: the upsert is idempotent, so a batch that committed
just before the death is not doubled. A crash of the service itself loses what it held and had not
committed, as before, which the restart back-fill recovers. The writer ignores SIGINT and SIGTERM: a Ctrl-C
or a stop signal sent to the whole process group (systemd's default) must not kill it before the service's
final flush; it ends when the service closes it, or with the service (its task queue closes).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from market_warehouse.resources.retry import RemoteError
from market_warehouse.resources.stream.frames import rows_frame
from market_warehouse.resources.warehouse.load import load_frame

log = logging.getLogger(__name__)

Batches = Mapping[str, Sequence[Mapping[str, Any]]]  # dataset -> rows of one micro-batch

WRITERS = ("process", "thread")


def write_batches(
    engine: sa.Engine, batches: Batches, *, source: str, run_id: str, now: datetime
) -> dict[str, int]:
    """One flush: each dataset's rows framed and loaded through `load_frame`; rows quarantined per dataset."""
    quarantined: dict[str, int] = {}
    for dataset, rows in batches.items():
        if rows:
            frame = rows_frame(dataset, rows)
            result = load_frame(engine, dataset, frame, source=source, run_id=run_id, now=now)
            quarantined[dataset] = result.quarantined
    return quarantined


class ThreadWriter:
    """Writes in a worker thread of the service's process (for embedding where a child process is unwanted)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    async def start(self) -> None:
        return None

    async def write(self, batches: Batches, *, source: str, run_id: str, now: datetime) -> dict[str, int]:
        return await asyncio.to_thread(
            write_batches, self.engine, batches, source=source, run_id=run_id, now=now
        )

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------------------------- the writer process

_ENGINE: sa.Engine | None = None


def _child_init(url: str, log_level: int) -> None:
    """In the writer process: ignore stop signals (the service decides when it ends), one engine."""
    global _ENGINE
    from market_warehouse.resources.database import create_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _ENGINE = create_engine(url)


def _child_ready() -> int:
    import os

    return os.getpid()


def _child_write(batches: Batches, source: str, run_id: str, now: datetime) -> dict[str, int]:
    if _ENGINE is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("the writer process has no engine")
    try:
        return write_batches(_ENGINE, batches, source=source, run_id=run_id, now=now)
    except Exception as exc:
        # Carried as data: some driver exceptions do not survive pickling back to the service.
        raise RemoteError.of(exc) from None


class ProcessWriter:
    """Writes in a child process (spawned, one batch at a time); a dead child is replaced and the batch
    written again (see the module docstring)."""

    def __init__(self, engine: sa.Engine) -> None:
        # The child builds its own engine from the URL (handed over its pipe, never logged).
        self._url = engine.url.render_as_string(hide_password=False)
        self._pool: ProcessPoolExecutor | None = None
        self.pid: int | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(self._url, logging.getLogger().getEffectiveLevel()),
        )

    async def start(self) -> None:
        """Start the child and wait until it is ready (imports and connection: seconds, not at the first
        flush)."""
        loop = asyncio.get_running_loop()
        self._pool = self._new_pool()
        self.pid = await loop.run_in_executor(self._pool, _child_ready)

    async def write(self, batches: Batches, *, source: str, run_id: str, now: datetime) -> dict[str, int]:
        if self._pool is None:
            await self.start()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _child_write, batches, source, run_id, now)
        except BrokenProcessPool:
            log.warning("stream writer process %s died; a new one writes the batch again", self.pid)
            self._pool.shutdown(wait=False, cancel_futures=True)
            await self.start()
            return await loop.run_in_executor(self._pool, _child_write, batches, source, run_id, now)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True)


def make_writer(kind: str, engine: sa.Engine) -> ProcessWriter | ThreadWriter:
    """The writer named `kind` ('process' or 'thread')."""
    if kind == "process":
        return ProcessWriter(engine)
    if kind == "thread":
        return ThreadWriter(engine)
    raise ValueError(f"unknown stream writer {kind!r}: expected one of {list(WRITERS)}")
