"""Dagster steps retry transient errors only, and fail at once, naming the root cause, on anything else.

Why not `dg.RetryPolicy`: a policy retries every exception, so an IndexError was tried four times with
back-off (~2.5 minutes) and the run said only "Exceeded max_retries of 3" (issue 11). Instead a compute
function decorated with `retry_transient` turns what its body raises into:

- `dg.RetryRequested(max_retries, seconds_to_wait)` from the error when `resources.retry.classify` calls
  it transient and tries are left: Dagster logs STEP_UP_FOR_RETRY and restarts the step after the wait
  (exponential with jitter, computed here from the step's `Backoff`, so it is configurable per run);
- `dg.Failure(allow_retries=False)` from the error otherwise, described by its root cause
  ("IndexError: index -1 is out of bounds … (at resources/exchanges/synthetic.py:88)") with the same
  facts as metadata, so the step failure says what broke and where; `allow_retries=False` keeps any
  retry policy added later from retrying it. A transient error that is still there after the last retry
  fails the same way, saying how many tries it had.

Dagster's own control flow (`Failure`, `RetryRequested`, framework errors) passes through untouched. Run
retries (`run_retries` in an instance's dagster.yaml) are not configured in this project; if a deployment
turns them on, the market-data jobs carry `dagster/retry_on_asset_or_op_failure: false` so that a step
failure, already retried here when that could help, does not re-run the whole run (a run that dies for
another reason, e.g. its worker, is still retried).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg

from market_warehouse.resources.retry import Backoff, RootError, classify, first_line, short_path

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo  # what STEP_FAILURE events carry

F = TypeVar("F", bound=Callable[..., Any])
BackoffOf = Callable[[Any], Backoff]  # the step's context -> its back-off

NO_RUN_RETRY_ON_STEP_FAILURE = {"dagster/retry_on_asset_or_op_failure": "false"}


def step_error(exc: Exception, attempt: int, backoff: Backoff, log: Any = None) -> Exception:
    """What to raise instead of `exc` on try `attempt` (0 = first): a retry request or a final failure."""
    verdict = classify(exc)
    root = RootError.of(exc)
    if verdict.transient and attempt < backoff.max_retries:
        wait = backoff.delay(attempt)
        if log is not None:
            log.warning(
                f"transient error, retry {attempt + 1}/{backoff.max_retries} in {wait:.1f}s "
                f"({verdict.reason}): {root}"
            )
        return dg.RetryRequested(max_retries=backoff.max_retries, seconds_to_wait=wait)
    if verdict.transient:
        description = f"{root} — still failing after {attempt} retries ({verdict.reason})"
    else:
        description = f"{root} — not retried: {verdict.reason}"
    metadata = {
        "error_type": root.type,
        "error_message": root.message,
        "raised_at": root.location or "unknown",
        "transient": verdict.transient,
        "retries": attempt,
    }
    return dg.Failure(description=description, metadata=metadata, allow_retries=False)


@contextlib.contextmanager
def transient_retries(context: Any, backoff: Backoff) -> Iterator[None]:
    """Run a step's body: transient errors become retry requests, others an immediate, named failure."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested, dg.DagsterError):
        raise  # Dagster's own control flow and framework errors
    except Exception as exc:
        raise step_error(exc, context.retry_number, backoff, context.log) from exc


def retry_transient(backoff_of: BackoffOf) -> Callable[[F], F]:
    """Decorate an asset or op compute function (plain or generator, context first) with
    `transient_retries`; `backoff_of(context)` gives the step's back-off (e.g. from a resource's config)."""

    def decorate(fn: F) -> F:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generate(context, *args, **kwargs):
                with transient_retries(context, backoff_of(context)):
                    yield from fn(context, *args, **kwargs)

            return generate  # type: ignore[return-value]

        @functools.wraps(fn)
        def compute(context, *args, **kwargs):
            with transient_retries(context, backoff_of(context)):
                return fn(context, *args, **kwargs)

        return compute  # type: ignore[return-value]

    return decorate


# --------------------------------------------------------------------------------------------------------
# Reading a failure back from Dagster's events
# --------------------------------------------------------------------------------------------------------

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def innermost(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The innermost error of a Dagster error chain (`cause`, else `context`): the user's root error,
    under Dagster's wrappers ("Error occurred while executing op …", "Exceeded max_retries …")."""
    while (inner := error.cause or error.context) is not None:
        error = inner
    return error


def root_error(error: SerializableErrorInfo) -> RootError:
    """Type, message and raise location of the innermost error of a step failure's error info."""
    root = innermost(error)
    message = first_line(root.message)
    # `message` is traceback's "module.Class: text" line; keep the text.
    head, sep, text = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == root.cls_name:
        message = text
    elif message.rsplit(".", 1)[-1] == root.cls_name:
        message = ""
    location = None
    if root.stack and (frame := _FRAME.search(root.stack[-1])):
        location = f"{short_path(frame['file'])}:{frame['line']}"
    return RootError(root.cls_name or "Error", message, location)
