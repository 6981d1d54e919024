"""The project's one clock: every "now" and "today" of `resources/` and `pipelines/` comes from here.

Why one injectable clock: what the warehouse does depends on the date. Which candles are closed, which
partitions exist, whether a synthetic NYSE day has a session, what a retention policy drops, whether a row
lies in the future: all of it is a function of "now". A test that can only run on the day it happens to run
proves nothing about Saturdays, holidays, half days, DST changes or year ends (issue 11: the demo failed
on every day whose window held a Saturday, and no test ever ran on one). With the clock as an input:

- tests pin any instant (`frozen(at)`), e.g. every day of a year, Thanksgiving, 2028-02-29;
- the demo pins the instant just after the end of its window (`market-warehouse demo --end DATE`), so the
  same command gives the same rows whatever day it is run on;
- subprocesses see the same clock: `frozen` also sets the environment variable `MW_NOW` (ISO 8601 with a
  zone, e.g. `2026-11-30T00:05:00Z`), read by `now()` in any process that has no in-process clock, so
  Dagster's multiprocess executor, the CLI or a script started under a pinned clock agree with it.

Precedence: a clock installed in this process (`use_clock` / `frozen`) > `MW_NOW` > the system clock.

What does not go through it, on purpose: durations (`time.perf_counter`), server-side bookkeeping columns
(`created_at DEFAULT now()`, `ingested_at`) and comparisons against them, and file modification times
(the landing folder's "is this file still being written" test compares `st_mtime` with the system clock
that stamped it). Dagster's scheduler ticks on its own clock; for partition keys past the system date, the
pipelines enter `pipelines.partitions.partitions_at_clock()`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import lru_cache

ENV_VAR = "MW_NOW"

Clock = Callable[[], datetime]

_lock = threading.Lock()
_installed: list[Clock] = []  # a stack: the innermost `use_clock` wins; module-wide so threads share it


def system_now() -> datetime:
    """The machine's clock, tz-aware UTC (the default when nothing is pinned)."""
    return datetime.now(UTC)


def now() -> datetime:
    """The current instant, tz-aware UTC: the installed clock, else `MW_NOW`, else the system clock."""
    installed = _installed[-1:]  # one slice, so a block ending in another thread cannot race the lookup
    if installed:
        return _as_utc(installed[0](), "the installed clock")
    pinned = os.environ.get(ENV_VAR)
    if pinned:
        return parse_instant(pinned)
    return system_now()


def today() -> date:
    """The current UTC date."""
    return now().date()


def is_pinned() -> bool:
    """True when "now" is not the system clock (a clock installed here or `MW_NOW` set)."""
    return bool(_installed) or bool(os.environ.get(ENV_VAR))


@lru_cache(maxsize=32)
def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with a zone (`Z` or an offset) as UTC; a naive or malformed value is an error,
    not a silent fall-back to the system clock."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r} is not an ISO 8601 time (e.g. 2026-11-30T00:05:00Z)") from None
    return _as_utc(value, f"{ENV_VAR}={text!r}")


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make `clock` this process's "now" inside the block (all threads; nested blocks stack).

    A function cannot cross a process boundary: subprocesses keep the system clock or `MW_NOW`; use
    `frozen` when they must agree.
    """
    with _lock:
        _installed.append(clock)
    try:
        yield clock
    finally:
        with _lock:
            _installed.remove(clock)


@contextlib.contextmanager
def frozen(at: datetime | str) -> Iterator[datetime]:
    """Pin "now" to the instant `at` (tz-aware, or ISO text with a zone) in this process and, through
    `MW_NOW`, in the processes it starts inside the block."""
    instant = parse_instant(at) if isinstance(at, str) else _as_utc(at, repr(at))
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = instant.isoformat().replace("+00:00", "Z")
    try:
        with use_clock(lambda: instant):
            yield instant
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


def _as_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} gave {value!r}: a clock must give a timezone-aware datetime")
    return value.astimezone(UTC)
