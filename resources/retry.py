"""What is worth retrying, how long to wait, and how to name an error: one answer for every retry.

A retry only helps when the cause can be gone a moment later: the network or the exchange was briefly
unreachable or rate limited, the database dropped the connection, restarted, or aborted our transaction
to resolve a conflict (serialization failure, deadlock, lock timeout). Everything else (an IndexError, a
bad symbol, a constraint violation, a syntax error) fails the same way every time, and retrying it only
wastes minutes and hides the error behind "Exceeded max_retries" (issue 11). So:

- `classify(exc)` walks the exception chain Python prints (`__cause__`, else `__context__` unless
  suppressed, plus SQLAlchemy's `.orig`) and calls the error transient when any link is one of:
  the ccxt `NetworkError` family (`RateLimitExceeded`, `DDoSProtection`, `RequestTimeout`,
  `ExchangeNotAvailable`, `OnMaintenance`, `InvalidNonce`), a database error whose SQLSTATE is in
  `TRANSIENT_SQLSTATES` or the connection-exception class 08 (psycopg2's `pgcode`, asyncpg's `sqlstate`),
  a psycopg2 `OperationalError` without SQLSTATE (psycopg2 raises those only for a connection that failed
  or broke) or another psycopg2 error SQLAlchemy's dialect calls a disconnect, a SQLAlchemy `DBAPIError` whose connection was invalidated, `DisconnectionError`, a pool
  `TimeoutError`, or the builtin `ConnectionError` / `TimeoutError`. A transient link anywhere counts: an
  error raised while handling a transient one would not have happened on a try without it.
- `Backoff` is the wait between tries: exponential, capped, with ± jitter so that many clients failing
  together do not come back together.
- `RootError` names the innermost error of the chain (type, first line of the message, file:line of the
  raise), which is what a person needs to see instead of the wrapper's message.
- `RemoteError` carries an error of another process (the stream's writer) back as data, with the verdict
  `classify` gave it there: some driver exceptions do not survive pickling, and a plain `RuntimeError` would
  lose both the class a reader looks for and whether a retry can pass.

Plain Python, no Dagster: the exchanges' in-call back-off (`resources.exchanges.client.call`) and the
Dagster steps (`pipelines.retries`) both use it.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import ccxt
import psycopg2
import sqlalchemy as sa

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# SQLSTATEs after which the same statement can succeed when tried again (PostgreSQL appendix A).
TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
    "55P03": "lock not available (lock_timeout)",
    "57P01": "server shut down by an administrator",
    "57P02": "server crash shutdown",
    "57P03": "server not accepting connections yet",
    "53300": "too many connections",
}
CONNECTION_EXCEPTION_CLASS = "08"  # every 08xxx but 08P01 (protocol violation: a client bug)
PROTOCOL_VIOLATION = "08P01"
RATE_LIMITS = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)


@dataclass(frozen=True)
class Verdict:
    """Whether an error is worth another try, and why: `error` is the link that decided (the transient one)
    or, when nothing in the chain is transient, the root cause."""

    transient: bool
    reason: str
    error: BaseException


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, outermost first: the chain Python prints, plus SQLAlchemy's `.orig`
    (the driver's error) where it is not already the cause. Stops on a cycle."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        orig = getattr(link, "orig", None) if isinstance(link, sa.exc.DBAPIError) else None
        if link.__cause__ is not None:
            link = link.__cause__
        elif not link.__suppress_context__ and link.__context__ is not None:
            link = link.__context__
        else:
            link = orig if isinstance(orig, BaseException) else None


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error of the chain: where the failure started."""
    *_, root = error_chain(exc)
    return root


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error: psycopg2 `pgcode`, asyncpg (and SQLAlchemy's adapter) `sqlstate`."""
    for attribute in ("pgcode", "sqlstate"):
        code = getattr(error, attribute, None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _transient_reason(error: BaseException) -> str | None:
    """Why this one link is transient, or None."""
    if isinstance(error, RemoteError):  # classified where it was raised
        return error.reason if error.transient else None
    if isinstance(error, ccxt.NetworkError):
        kind = "rate limited" if isinstance(error, RATE_LIMITS) else "network or exchange unavailable"
        return f"exchange {type(error).__name__} ({kind})"
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return "database connection lost (invalidated by SQLAlchemy)"
    if isinstance(error, sa.exc.DisconnectionError):
        return "database disconnect"
    if isinstance(error, sa.exc.TimeoutError):
        return "no free connection in the pool in time"
    code = _sqlstate(error)
    if code in TRANSIENT_SQLSTATES:
        return f"SQLSTATE {code} {TRANSIENT_SQLSTATES[code]}"
    if code and code.startswith(CONNECTION_EXCEPTION_CLASS) and code != PROTOCOL_VIOLATION:
        return f"SQLSTATE {code} connection exception"
    if isinstance(error, psycopg2.OperationalError) and code is None:
        return "database connection failed or broke (psycopg2 OperationalError without SQLSTATE)"
    if isinstance(error, psycopg2.Error) and _psycopg2_dialect().is_disconnect(error, None, None):
        return "database connection lost (psycopg2 error on a closed connection)"
    if isinstance(error, (ConnectionError, TimeoutError)):
        return f"{type(error).__name__} (network)"
    return None


@functools.cache
def _psycopg2_dialect() -> sa.Dialect:
    """SQLAlchemy's psycopg2 dialect (no connection is made): its `is_disconnect` knows libpq's and
    psycopg2's messages for a connection that is gone, for raw driver errors SQLAlchemy did not wrap."""
    return sa.create_engine("postgresql+psycopg2://").dialect


def classify(exc: BaseException) -> Verdict:
    """Transient when any link of the chain is (see the module docstring), else not, with the root cause."""
    root = exc
    for link in error_chain(exc):
        reason = _transient_reason(link)
        if reason is not None:
            return Verdict(True, reason, link)
        root = link
    return Verdict(False, f"not transient: {type(root).__name__}", root)


def is_transient(exc: BaseException) -> bool:
    """Whether trying again can succeed (see `classify`)."""
    return classify(exc).transient


def is_rate_limited(exc: BaseException) -> bool:
    """Whether the exchange said "too many requests" (429/418): worth honouring its `Retry-After`."""
    return any(isinstance(link, RATE_LIMITS) for link in error_chain(exc))


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait before trying again: exponential delay with ± jitter, capped, a bounded
    number of times. Used per exchange call (`resources.exchanges.client.call`) and per Dagster step.

    `sleep` is injectable so tests can use tiny delays and count them instead of waiting.
    """

    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retries: int = 6
    jitter: float = 0.25
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `attempt + 1` (attempt 0 is the first retry); at least `retry_after`
        (the server's own hint, capped at `max_delay`)."""
        raw = min(self.max_delay, self.base_delay * 2**attempt)
        jittered = raw * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 - not cryptographic
        if retry_after is not None:
            jittered = max(jittered, min(retry_after, self.max_delay))
        return max(0.0, jittered)


def short_path(filename: str) -> str:
    """A source path a reader can place: a library's from `site-packages/` on, else relative to the
    project, else as given."""
    path = Path(filename)
    if "site-packages" in path.parts:
        return Path(*path.parts[path.parts.index("site-packages") + 1 :]).as_posix()
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except (ValueError, OSError):
        return filename


def _last_frame(tb: TracebackType | None) -> str | None:
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{short_path(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"


@dataclass(frozen=True)
class RootError:
    """An error as a person needs to see it: type, message (first line) and where it was raised."""

    type: str
    message: str
    location: str | None = None

    @classmethod
    def of(cls, exc: BaseException) -> RootError:
        """The innermost error of `exc`'s chain; its location is the last frame of its traceback."""
        root = root_cause(exc)
        return cls(type(root).__name__, first_line(str(root)), _last_frame(root.__traceback__))

    def __str__(self) -> str:
        where = f" (at {self.location})" if self.location else ""
        return f"{self.type}: {self.message}{where}" if self.message else f"{self.type}{where}"


class RemoteError(Exception):
    """An error raised in another process, carried back as picklable data: the original's class name and
    message, its root cause, and the verdict `classify` gave it there (which `classify` honours here)."""

    def __init__(self, kind: str, message: str, root: str, transient: bool, reason: str) -> None:
        super().__init__(kind, message, root, transient, reason)
        self.kind, self.message, self.root = kind, message, root
        self.transient, self.reason = transient, reason

    @classmethod
    def of(cls, exc: BaseException) -> RemoteError:
        verdict = classify(exc)
        return cls(type(exc).__name__, str(exc), str(RootError.of(exc)), verdict.transient, verdict.reason)

    def __str__(self) -> str:
        head = f"{self.kind}: {self.message}" if self.message else self.kind
        root = "" if self.root.startswith(head.splitlines()[0]) else f"; root cause {self.root}"
        return f"{head}{root} [{'transient: ' + self.reason if self.transient else self.reason}]"


def first_line(message: str) -> str:
    """The first non-empty line (driver messages add DETAIL/HINT lines, SQLAlchemy the statement)."""
    return next((line.strip() for line in message.strip().splitlines() if line.strip()), "")
